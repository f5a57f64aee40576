// Site settings: the "Copy snippet" button copies the embed snippet's text to the clipboard.
function copySnippet(event) {
  const button = event.target.closest('[data-copy-target]');
  if (!button) return;
  const source = document.getElementById(button.dataset.copyTarget);
  const status = button.parentElement.querySelector('[data-copy-status]');
  const say = (text) => { if (status) status.textContent = text; };
  if (!source || !navigator.clipboard) {
    say('Select the snippet and copy it with your keyboard.');
    return;
  }
  navigator.clipboard.writeText(source.textContent).then(
    () => say('Copied.'),
    () => say('Could not copy: select the snippet and copy it with your keyboard.'),
  );
}
document.addEventListener('click', copySnippet);
