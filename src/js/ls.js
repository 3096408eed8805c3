// What a window's page says about its language server, without calling it:
// the 2.x desktop app's configuration and the LS calls the page has made.
// Runs in the page's main world (window.__APP_CONFIG__ is the page's own global).
(() => {
  const service = '/exa.language_server_pb.LanguageServerService/';
  let config = null;
  try {
    const c = window.__APP_CONFIG__;
    if (c && typeof c === 'object') {
      config = {
        csrfToken: typeof c.csrfToken === 'string' ? c.csrfToken : null,
        languageServerUrl: typeof c.languageServerUrl === 'string' ? c.languageServerUrl : null,
      };
    }
  } catch (e) { /* a getter that throws: no configuration */ }
  let calls = [];
  try {
    calls = performance.getEntriesByType('resource')
      .map((e) => e.name)
      .filter((n) => n.includes(service));
  } catch (e) { /* no resource timing */ }
  return { origin: location.origin, config, calls: calls.slice(-5) };
})()
