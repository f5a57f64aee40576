// A card whose request fails says so instead of loading forever.
function cardFailed(event) {
  const card = event.detail.elt && event.detail.elt.closest('.card');
  const status = card && card.querySelector('.loading');
  if (!status) return;
  status.className = 'card-error';
  status.removeAttribute('aria-busy');
  status.textContent = 'This card could not be loaded. Reload the page to try again.';
}
document.addEventListener('htmx:responseError', cardFailed);
document.addEventListener('htmx:sendError', cardFailed);

// A select or checkbox marked data-autosubmit applies at once (the form works without it).
document.addEventListener('change', (event) => {
  const field = event.target.closest && event.target.closest('[data-autosubmit]');
  if (field && field.form) field.form.submit();
});

// Keyboard shortcuts: a key follows the link that carries it in data-key (shown in the menus).
document.addEventListener('keydown', (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest && target.closest('input, select, textarea, [contenteditable]')) return;
  const key = event.key.length === 1 ? event.key.toUpperCase() : event.key;
  const link = document.querySelector(`a[data-key="${CSS.escape(key)}"]`);
  if (link) {
    event.preventDefault();
    window.location.assign(link.href);
  }
});
