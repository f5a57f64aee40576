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
