// A card whose request fails says so instead of loading forever (a tab that fails: in its panel).
function cardFailed(event) {
  const card = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest('.card');
  if (!card) return;
  card.removeAttribute('aria-busy');
  const status = card.querySelector('.loading') || card.querySelector('.tab-panel');
  if (!status) return;
  status.className = 'card-error';
  status.removeAttribute('aria-busy');
  status.textContent = 'This card could not be loaded. Reload the page to try again.';
}
document.addEventListener('htmx:responseError', cardFailed);
document.addEventListener('htmx:sendError', cardFailed);

// A select or checkbox marked data-autosubmit applies at once (the form works without it);
// a card's select of what it shows (data-tab-select) loads the partial its option names.
document.addEventListener('change', (event) => {
  const field = event.target.closest && event.target.closest('[data-autosubmit]');
  if (field && field.form) field.form.submit();
  const choice = event.target.closest && event.target.closest('select[data-tab-select]');
  const card = choice && choice.closest('.card');
  if (!card) return;
  keepTab(choice.selectedOptions[0].dataset.pageUrl);
  window.htmx.ajax('GET', choice.value, { target: card, swap: 'innerHTML' });
});

// Keyboard shortcuts: a key follows the link that carries it in data-key (shown in the menus).
document.addEventListener('keydown', (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest && target.closest('input, select, textarea, [contenteditable]')) return;
  const key = event.key.length === 1 ? event.key.toUpperCase() : event.key;
  // In a card's tabs the arrow keys move between tabs, not between periods.
  if (key.startsWith('Arrow') && target.closest && target.closest('[role=tablist]')) return;
  const link = document.querySelector(`a[data-key="${CSS.escape(key)}"]`);
  if (link) {
    event.preventDefault();
    window.location.assign(link.href);
  }
});

// The page's URL keeps each card's tab (t=card:tab): a tab switch replaces it, and a link to
// this dashboard rendered before the switch takes the current tabs along when followed.
function keepTab(pageUrl) {
  window.history.replaceState(window.history.state, '', pageUrl);
}
document.addEventListener('click', (event) => {
  const link = event.target.closest && event.target.closest('a[href]');
  if (!link || link.origin !== window.location.origin) return;
  if (link.pathname !== window.location.pathname && !link.pathname.endsWith('/export.zip')) return;
  const target = new URL(link.href);
  const current = new URLSearchParams(window.location.search);
  target.searchParams.delete('t');
  current.getAll('t').forEach((tab) => target.searchParams.append('t', tab));
  link.href = target.href;
});

// A card's tabs: each loads its own partial into the card (the URL in data-tab-url);
// arrow keys, Home and End move between the tabs of a tablist (WAI-ARIA tabs pattern).
function openTab(tab) {
  const card = tab.closest('.card');
  if (!card || tab.getAttribute('aria-selected') === 'true') return;
  card.setAttribute('aria-busy', 'true');
  if (tab.dataset.pageUrl) keepTab(tab.dataset.pageUrl);
  window.htmx.ajax('GET', tab.dataset.tabUrl, { target: card, swap: 'innerHTML' }).then(() => {
    card.removeAttribute('aria-busy');
    const selected = card.querySelector('[role=tab][aria-selected=true]');
    if (selected && card.dataset.tabFocus) selected.focus();
    delete card.dataset.tabFocus;
  });
}
document.addEventListener('click', (event) => {
  const tab = event.target.closest && event.target.closest('[role=tab][data-tab-url]');
  if (tab) openTab(tab);
});
document.addEventListener('keydown', (event) => {
  const tab = event.target.closest && event.target.closest('[role=tab][data-tab-url]');
  if (!tab) return;
  const tabs = Array.from(tab.closest('[role=tablist]').querySelectorAll('[role=tab]'));
  const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
  let index = tabs.indexOf(tab);
  if (event.key in moves) index = (index + moves[event.key] + tabs.length) % tabs.length;
  else if (event.key === 'Home') index = 0;
  else if (event.key === 'End') index = tabs.length - 1;
  else return;
  event.preventDefault();
  tab.closest('.card').dataset.tabFocus = '1';
  tabs[index].focus();
  openTab(tabs[index]);
});

// The chart's tooltip: over the bar hovered or focused, its bucket, its value and the compared
// period's (the bar's <title> says the same to screen readers).
function showTip(bar) {
  const wrap = bar.closest('.chart-wrap');
  const tip = wrap && wrap.querySelector('.chart-tip');
  if (!tip) return;
  const lines = [['strong', bar.dataset.tipLabel], ['span', bar.dataset.tipValue]];
  if (bar.dataset.tipBefore) lines.push(['span', bar.dataset.tipBefore, 'before']);
  tip.replaceChildren(...lines.map(([tag, text, name]) => {
    const line = document.createElement(tag);
    line.textContent = text;
    if (name) line.className = name;
    line.style.display = 'block';
    return line;
  }));
  const box = bar.getBoundingClientRect();
  const outer = wrap.getBoundingClientRect();
  const middle = Math.min(Math.max(box.left + box.width / 2 - outer.left, 70), outer.width - 70);
  tip.style.left = `${middle}px`;
  tip.hidden = false;
}
function hideTip(bar) {
  const tip = bar.closest('.chart-wrap') && bar.closest('.chart-wrap').querySelector('.chart-tip');
  if (tip) tip.hidden = true;
}
for (const [type, handler] of [['mouseover', showTip], ['focusin', showTip], ['mouseout', hideTip], ['focusout', hideTip]]) {
  document.addEventListener(type, (event) => {
    const bar = event.target.closest && event.target.closest('.chart .bar');
    if (bar) handler(bar);
  });
}
