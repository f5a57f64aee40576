/* Ursa tracker: no cookies, no storage */
((w, d) => {
  const s = d.currentScript, L = location, N = navigator, H = history, R = Math.round,
    A = k => s.getAttribute(k),
    on = (t, f, o) => (o || w).addEventListener(t, f, true),
    x = (v, n) => v.toString(16).padStart(n, '0');
  if (!s || w.ursa && w.ursa.l) return; // loaded twice
  const dom = A('data-domain') || L.hostname,
    api = A('data-api') || new URL('/api/event', s.src).href,
    hm = s.hasAttribute('data-hash') ? 1 : void 0,
    fd = A('data-file-downloads'), // file downloads: opt in, optionally with extensions
    fx = fd != null && RegExp('\\.(' + (fd || 'pdf,xlsx,docx,txt,rtf,csv,exe,key,pps,ppt,pptx,7z,pkg,rar,gz,zip,avi,mov,mp4,mpeg,wmv,midi,mp3,wav,wma,dmg,iso,msi').replace(/\W+/g, '|') + ')$', 'i');
  const send = (n, o, perf) => {
    o = o || {};
    const c = () => o.callback && o.callback(), b = JSON.stringify({
      n, u: o.u || L.href, d: dom, r: d.referrer || null, p: o.props, $: o.revenue,
      i: o.interactive === false ? false : void 0, h: hm, w: w.innerWidth, sd: o.sd, e: o.e,
      // id: 44 bits of ms + 20 random bits
      ursa: {id: x(Date.now(), 11) + x(Math.random() * 1048576 | 0, 5), perf}
    });
    if (L.protocol == 'file:' || N.webdriver && !w.__ursa) return c();
    N.sendBeacon && N.sendBeacon(api, b) ? c() : fetch(api,
      {method: 'POST', keepalive: true, headers: {'Content-Type': 'text/plain'}, body: b}).then(c, c);
  };
  // engagement: the deepest scroll (% of the page) and the time in front of the visitor
  // (visible and focused), sent when the page is hidden or left (SPA navigations too), once
  // until it is visible again; each beacon carries the time since the page's last one, so a
  // page's beacons add up
  let last, lu, sv = 0, s0, s1, done, sd, et, t0, eh;
  const de = d.documentElement, now = Date.now,
    sc = () => sd = Math.max(sd, Math.min(100, R((w.scrollY + w.innerHeight) / de.scrollHeight * 100) || 0)),
    idle = () => { if (t0) et += now() - t0, t0 = 0; },
    fg = () => t0 = t0 || (!d.hidden && d.hasFocus() ? now() : 0),
    eng = () => {
      idle();
      if (last && !eh) eh = 1, send('engagement', {u: lu, sd, e: et}), et = 0;
    };
  const pv = () => {
    const k = L.pathname + (hm ? L.hash : '');
    if (k != last) eng(), last = k, lu = L.href, sd = et = eh = 0, sc(), fg(), send('pageview');
  }, push = H.pushState;
  H.pushState = function (...a) { push.apply(this, a); pv(); };
  on('popstate', pv);
  if (hm) on('hashchange', pv);
  on('scroll', sc);
  on('focus', fg);
  on('blur', e => e.target == w && idle()); // not a field's blur: capture sees those too
  // file downloads (when opted in), else outbound links (left or middle click)
  const ck = e => {
    const a = e.target.closest && e.target.closest('a[href]'),
      t = a && e.button < 2 && (fx && fx.test(a.pathname) ? 'File Download'
        : /^https?:$/.test(a.protocol) && a.host != L.host && 'Outbound Link: Click');
    if (t) send(t, {props: {url: a.href}});
  };
  on('click', ck, d);
  on('auxclick', ck, d);
  // performance
  const P = {}, F = [], ob = (t, f) => {
    try {
      if (PerformanceObserver.supportedEntryTypes.includes(t)) {
        const o = new PerformanceObserver(l => l.getEntries().forEach(f));
        o.observe({type: t, buffered: true, durationThreshold: 40});
        return F.push(() => o.takeRecords().forEach(f));
      }
    } catch (_) {}
  }, inp = e => P.inp = Math.max(P.inp || 0, e.duration);
  ob('paint', e => e.name == 'first-contentful-paint' && (P.fcp = e.startTime));
  ob('largest-contentful-paint', e => P.lcp = e.startTime);
  if (ob('layout-shift', e => {
    const t = e.startTime;
    if (e.hadRecentInput) return;
    if (sv && t - s1 < 1e3 && t - s0 < 5e3) sv += e.value; else sv = e.value, s0 = t;
    s1 = t;
    if (sv > P.cls) P.cls = sv;
  })) P.cls = 0;
  ob('event', e => e.interactionId > 0 && inp(e));
  ob('first-input', inp);
  const perf = () => {
    if (done) return;
    done = 1;
    F.forEach(f => f());
    const t = performance.getEntriesByType('navigation')[0], r = {},
      D = k => t[k + 'End'] - t[k + 'Start'], v = Object.assign(t ? {
        dns: D('domainLookup'),
        connect: D('connect'),
        tls: t.secureConnectionStart > 0 ? t.connectEnd - t.secureConnectionStart : 0,
        ttfb: t.responseStart,
        download: D('response'),
        dom_content_loaded: t.domContentLoadedEventEnd,
        page_load: t.loadEventEnd
      } : {}, P);
    for (const k in v)
      if (v[k] >= 0 && (v[k] || !/load/.test(k))) r[k] = k == 'cls' ? R(v[k] * 1e4) / 1e4 : R(v[k]);
    for (const k in r) return send('ursa:performance', {interactive: false}, r);
  };
  on('visibilitychange', () => d.hidden ? (perf(), eng()) : (eh = 0, fg()), d);
  on('pagehide', () => (perf(), eng()));
  const q = w.ursa && w.ursa.q || [];
  w.ursa = (n, o) => send(n, o);
  w.ursa.l = 1;
  d.prerendering ? on('prerenderingchange', pv, d) : pv();
  q.forEach(a => send(a[0], a[1]));
})(window, document);
