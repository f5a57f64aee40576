// Recovery codes page: copy the codes, or download them as a text file.
function recoveryCodesText(listId) {
  const list = document.getElementById(listId);
  if (!list) return '';
  const codes = Array.from(list.querySelectorAll('code'), (code) => code.textContent.trim());
  return 'Ursa recovery codes (each works once)\n\n' + codes.join('\n') + '\n';
}

function showStatus(message) {
  const status = document.querySelector('[data-copy-status]');
  if (status) status.textContent = message;
}

function copyCodes(event) {
  const text = recoveryCodesText(event.currentTarget.dataset.copyCodes);
  navigator.clipboard.writeText(text).then(
    () => showStatus('Copied.'),
    () => showStatus('Copying failed: select the codes and copy them by hand.'),
  );
}

function downloadCodes(event) {
  const text = recoveryCodesText(event.currentTarget.dataset.downloadCodes);
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  link.download = 'ursa-recovery-codes.txt';
  document.body.appendChild(link);
  link.click();
  link.remove();
  URL.revokeObjectURL(link.href);
}

document.addEventListener('DOMContentLoaded', () => {
  document.querySelectorAll('[data-copy-codes]').forEach((button) => {
    if (!navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener('click', copyCodes);
  });
  document.querySelectorAll('[data-download-codes]').forEach((button) => {
    button.hidden = false;
    button.addEventListener('click', downloadCodes);
  });
});
