// fhirbox Auth Sandbox: runs the OAuth flows from the browser against the server's real
// endpoints and shows every request as a curl command with the answer it got. No
// framework, no build step; the server passes what it must through data- attributes of
// #sandbox (the Content-Security-Policy allows no inline script).
'use strict';

(() => {
  const root = document.getElementById('sandbox');
  if (!root) return;
  const base = root.dataset.base;          // path prefix of the server, '' at the root
  const origin = root.dataset.origin;      // the server's public base URL, for curl
  const csrf = root.dataset.csrf;
  const redirectURI = root.dataset.redirectUri;
  const $ = (id) => document.getElementById(id);
  // What an authorization request leaves for the callback: this tab only, removed when
  // the browser comes back.
  const PENDING = 'fhirbox-sandbox-pending';

  const flows = {
    password: {
      scope: '',
      about: 'Resource owner password grant (RFC 6749 §4.3): the client sends the user\'s name and password to /auth/token.',
    },
    client_credentials: {
      scope: '',
      about: 'Client credentials grant (RFC 6749 §4.4): the client authenticates with its own secret; no user.',
    },
    authorization_code: {
      scope: 'openid',
      about: 'Authorization code with PKCE (RFC 6749 §4.1, RFC 7636): the page makes an S256 code verifier with WebCrypto, sends this browser to /auth/authorize, comes back at ' + redirectURI + ' with a code and exchanges it. Needs the sandbox callback among the client\'s redirect URIs.',
    },
    smart: {
      scope: 'openid fhirUser launch/patient patient/*.rs',
      about: 'SMART App Launch, standalone: the authorization code flow asking for launch/patient, whose token response names the patient picked at sign-in.',
    },
  };

  let clients = [];    // from /ui/sandbox/api/clients
  let current = null;  // the last token response: {flow, tokens, client}

  // ---- small helpers ----

  const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const randomB64 = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));
  const shellQuote = (s) => "'" + String(s).replace(/'/g, "'\\''") + "'";
  // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined for Basic.
  const formEncode = (s) => encodeURIComponent(s).replace(/%20/g, '+');
  const pretty = (text) => {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  };
  const el = (tag, props, ...children) => {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    for (const c of children) if (c != null) e.append(c);
    return e;
  };

  function selectedFlow() {
    return document.querySelector('input[name=flow]:checked').value;
  }

  function clientSettings() {
    return { id: $('client-id').value.trim(), secret: $('client-secret').value, auth: $('client-auth').value };
  }

  // withClient adds the client's authentication to a token-endpoint style request.
  function withClient(c, params, headers) {
    if (c.auth === 'basic') {
      headers['Authorization'] = 'Basic ' + btoa(unescape(encodeURIComponent(formEncode(c.id) + ':' + formEncode(c.secret))));
    } else if (c.auth === 'post') {
      params.set('client_id', c.id);
      params.set('client_secret', c.secret);
    } else {
      params.set('client_id', c.id);
    }
  }

  function curl(method, url, headers, body) {
    const parts = ['curl -i'];
    if (method !== 'GET') parts.push('-X ' + method);
    parts.push(shellQuote(url));
    for (const [k, v] of Object.entries(headers)) parts.push('-H ' + shellQuote(k + ': ' + v));
    if (body != null) parts.push('--data-raw ' + shellQuote(body));
    return parts.join(' \\\n  ');
  }

  // ---- the log of steps: data first, so that it survives the authorization redirect ----

  let log = [];

  function addStep(step) {
    log.push(step);
    renderStep(step, log.length - 1);
    return step;
  }

  function copyButton(text) {
    const b = el('button', { type: 'button', className: 'copy secondary', textContent: 'Copy' });
    b.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(text);
        b.textContent = 'Copied';
      } catch (e) {
        // No clipboard outside a secure context: select the text for Ctrl+C instead.
        const pre = b.previousElementSibling;
        const range = document.createRange();
        range.selectNodeContents(pre);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        b.textContent = 'Selected: press Ctrl+C';
      }
    });
    return b;
  }

  function renderStep(step, i) {
    const li = el('li', { className: 'step' });
    li.dataset.kind = step.kind || '';
    li.id = 'step-' + i;
    li.append(el('h3', { textContent: step.title }));
    if (step.note) li.append(el('p', { className: 'note', textContent: step.note }));
    if (step.curl) {
      li.append(el('h4', { textContent: 'Request' }),
        el('div', { className: 'code' }, el('pre', { className: 'curl', textContent: step.curl }), copyButton(step.curl)));
    }
    if (step.response) {
      li.dataset.status = String(step.response.status);
      const r = step.response;
      const head = 'HTTP ' + r.status + ' ' + r.statusText + '\n' + r.headers.map(([k, v]) => k + ': ' + v).join('\n');
      li.append(el('h4', { textContent: 'Response' }),
        el('pre', { className: 'response ' + (r.status < 400 ? 'ok' : 'bad'), textContent: head + (r.body ? '\n\n' + pretty(r.body) : '') }));
    }
    if (step.error) li.append(el('p', { className: 'error', textContent: step.error }));
    for (const jwt of step.jwts || []) li.append(renderJWT(jwt));
    $('steps').append(li);
    li.scrollIntoView({ block: 'nearest' });
  }

  // ---- HTTP ----

  // send makes one request of a flow and logs it. It sends no cookie (credentials:
  // 'omit'): what the curl command shows is what the server got, apart from the
  // headers every browser adds (User-Agent, Accept-Language…).
  async function send(title, method, path, headers, body, kind) {
    const step = { title, kind, curl: curl(method, origin + path, headers, body) };
    let res;
    try {
      res = await fetch(base + path, { method, headers, body, credentials: 'omit', cache: 'no-store', redirect: 'manual' });
    } catch (e) {
      step.error = 'The request failed: ' + e.message;
      addStep(step);
      return null;
    }
    const text = await res.text();
    step.response = { status: res.status, statusText: res.statusText, headers: [...res.headers.entries()], body: text };
    let json = null;
    try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
    return { step, status: res.status, json };
  }

  async function tokenRequest(title, c, params) {
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    withClient(c, params, headers);
    const r = await send(title, 'POST', '/auth/token', headers, params.toString(), 'token');
    if (!r) return;
    if (r.status === 200 && r.json && r.json.access_token) {
      r.step.jwts = decodeTokens(r.json);
      if (current && current.pendingNonce && r.step.jwts.length) checkNonce(r.step, current.pendingNonce);
    }
    addStep(r.step);
    if (r.status === 200 && r.json && r.json.access_token) setToken(r.json, c);
    return r;
  }

  // ---- tokens ----

  function decodePart(s) {
    const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
    return JSON.parse(decodeURIComponent(escape(b)));
  }

  // decodeTokens decodes the JWTs of a token response: header and payload, never the
  // signature, which only the server checks.
  function decodeTokens(resp) {
    const out = [];
    for (const name of ['access_token', 'id_token']) {
      const t = resp[name];
      if (typeof t !== 'string') continue;
      const parts = t.split('.');
      if (parts.length !== 3) {
        out.push({ name, opaque: true });
        continue;
      }
      try {
        out.push({ name, header: decodePart(parts[0]), payload: decodePart(parts[1]) });
      } catch (e) {
        out.push({ name, error: 'not a decodable JWT: ' + e.message });
      }
    }
    return out;
  }

  function renderJWT(j) {
    const box = el('div', { className: 'jwt' });
    box.dataset.token = j.name;
    box.append(el('h4', { textContent: 'Decoded ' + j.name }));
    if (j.opaque) {
      box.append(el('p', { className: 'note', textContent: 'An opaque token: it carries nothing to decode. Introspect it to see what it stands for.' }));
      return box;
    }
    if (j.error) {
      box.append(el('p', { className: 'error', textContent: j.error }));
      return box;
    }
    box.append(el('p', { className: 'note', textContent: 'Decoded in this browser; the signature is not verified here (the server verifies it on every request, with the keys at /.well-known/jwks.json).' }));
    const header = el('pre', { className: 'claims', textContent: JSON.stringify(j.header, null, 2) });
    header.dataset.part = 'header';
    const payload = el('pre', { className: 'claims', textContent: JSON.stringify(j.payload, null, 2) });
    payload.dataset.part = 'payload';
    box.append(el('h5', { textContent: 'Header' }), header, el('h5', { textContent: 'Payload' }), payload);
    return box;
  }

  function checkNonce(step, nonce) {
    const id = step.jwts.find((j) => j.name === 'id_token' && j.payload);
    if (id && id.payload.nonce !== nonce) step.error = 'The id_token\'s nonce is not the one this page sent: do not trust it.';
  }

  function setToken(resp, c) {
    const flow = current && current.flow ? current.flow : selectedFlow();
    current = { flow, tokens: resp, client: c };
    $('token-actions').hidden = false;
    $('token-short').textContent = resp.access_token.slice(0, 16) + '…';
    $('refresh').hidden = typeof resp.refresh_token !== 'string';
    if (flow === 'smart') {
      addStep(resp.patient
        ? { title: 'Launch context', kind: 'patient', note: 'The token response names the patient: ' + resp.patient + '.' }
        : { title: 'Launch context', kind: 'no-patient', note: 'The token response carries no patient: the server picked none for launch/patient.' });
    }
  }

  // ---- the flows ----

  async function run() {
    const flow = selectedFlow();
    const c = clientSettings();
    if (!c.id) {
      addStep({ title: 'Choose a client first', error: 'Pick a client or type its id (and secret) in section 1.' });
      return;
    }
    // The buttons act on the token of this run from now on, once it comes.
    current = { flow };
    $('token-actions').hidden = true;
    const scope = $('scope').value.trim();
    if (flow === 'password' || flow === 'client_credentials') {
      const params = new URLSearchParams({ grant_type: flow });
      if (flow === 'password') {
        params.set('username', $('username').value);
        params.set('password', $('password').value);
      }
      if (scope) params.set('scope', scope);
      await tokenRequest(flow === 'password' ? 'Password grant' : 'Client credentials grant', c, params);
      return;
    }
    const known = clients.find((x) => x.id === c.id);
    if (known && !known.callback) {
      addStep({ title: 'This client cannot come back here', error: 'Client ' + c.id + ' does not list ' + redirectURI +
        ' among the redirect URIs of its authorization_code grant, so /auth/authorize would stop at an error page. Create a client here, or add that URI to it.' });
      return;
    }
    await authorize(flow, c, scope);
  }

  async function authorize(flow, c, scope) {
    if (!window.crypto || !crypto.subtle) {
      addStep({ title: 'No WebCrypto', error: 'This browser gives WebCrypto only to secure pages (https, or localhost): PKCE cannot be computed here.' });
      return;
    }
    const verifier = randomB64(32);
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
    const challenge = b64url(new Uint8Array(digest));
    const state = randomB64(16);
    const nonce = randomB64(16);
    const q = new URLSearchParams({
      response_type: 'code', client_id: c.id, redirect_uri: redirectURI, state, nonce,
      code_challenge: challenge, code_challenge_method: 'S256',
    });
    if (scope) q.set('scope', scope);
    const path = '/auth/authorize?' + q.toString();
    addStep({
      title: 'PKCE and the authorization request', kind: 'authorize', curl: curl('GET', origin + path, {}, null),
      note: 'code_verifier ' + verifier + ' (kept in this tab), its S256 code_challenge ' + challenge +
        '. The browser now goes to the authorization endpoint: sign in and consent there if asked, and it comes back here.',
    });
    sessionStorage.setItem(PENDING, JSON.stringify({ flow, verifier, state, nonce, client: c, log, scope }));
    window.location.assign(base + path);
  }

  // callback finishes an authorization request when the browser comes back at the
  // sandbox's callback with a code (or an error).
  async function callback() {
    const params = new URLSearchParams(window.location.search);
    // The code is spent once exchanged; it leaves the address bar and the history now.
    history.replaceState(null, '', base + '/ui/sandbox');
    const raw = sessionStorage.getItem(PENDING);
    sessionStorage.removeItem(PENDING);
    let pending = null;
    try { pending = raw ? JSON.parse(raw) : null; } catch (e) { /* left by another version of this page */ }
    if (pending) {
      log = [];
      pending.log.forEach((s) => addStep(s));
      restoreClient(pending.client);
      document.querySelector('input[name=flow][value=' + pending.flow + ']').checked = true;
      showFlow(pending.flow);
      $('scope').value = pending.scope;
    }
    const back = { title: 'Back at the callback', kind: 'callback', curl: curl('GET', redirectURI + '?' + params.toString(), {}, null),
      note: 'The authorization server sent the browser here.' };
    if (!pending) {
      back.error = 'This tab sent no authorization request that is still waiting: nothing to exchange.';
      addStep(back);
      return;
    }
    if (params.get('state') !== pending.state) {
      back.error = 'The state is not the one this page sent: the code is not exchanged.';
      addStep(back);
      return;
    }
    if (params.has('error')) {
      back.error = 'The authorization request failed: ' + params.get('error') + (params.get('error_description') ? ': ' + params.get('error_description') : '');
      addStep(back);
      return;
    }
    addStep(back);
    current = { flow: pending.flow, pendingNonce: pending.nonce };
    const exchange = new URLSearchParams({ grant_type: 'authorization_code', code: params.get('code') || '', redirect_uri: redirectURI, code_verifier: pending.verifier });
    await tokenRequest('Code exchange', pending.client, exchange);
  }

  async function callPatient() {
    if (!current || !current.tokens) return;
    const r = await send('GET /fhir/Patient with the token', 'GET', '/fhir/Patient', { Authorization: 'Bearer ' + current.tokens.access_token, Accept: 'application/fhir+json' }, null, 'patient-search');
    if (r) addStep(r.step);
  }

  async function tokenInfo(kind) {
    if (!current || !current.tokens) return;
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    const params = new URLSearchParams({ token: current.tokens.access_token });
    withClient(current.client, params, headers);
    const path = kind === 'introspect' ? '/auth/introspect' : '/auth/revoke';
    const r = await send(kind === 'introspect' ? 'Introspection (RFC 7662)' : 'Revocation (RFC 7009)', 'POST', path, headers, params.toString(), kind);
    if (!r) return;
    if (kind === 'introspect' && r.json && typeof r.json.active === 'boolean') r.step.note = 'active: ' + r.json.active;
    addStep(r.step);
  }

  // refresh uses the refresh token of the last token response (RFC 6749 §6), which
  // the server rotates: the answer carries the next one.
  async function refresh() {
    if (!current || !current.tokens || !current.tokens.refresh_token) return;
    const params = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: current.tokens.refresh_token });
    await tokenRequest('Refresh grant', current.client, params);
  }

  // ---- clients ----

  async function loadClients() {
    $('client-info').textContent = 'Loading clients…';
    let res, body;
    try {
      res = await fetch(base + '/ui/sandbox/api/clients', { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
      body = await res.json();
    } catch (e) {
      $('client-info').textContent = 'Could not list the clients: ' + e.message;
      return;
    }
    if (!res.ok) {
      $('client-info').textContent = 'Could not list the clients: ' + outcomeText(body);
      return;
    }
    clients = body.clients;
    const pick = $('client-pick');
    const keep = pick.value;
    pick.replaceChildren(el('option', { value: '', textContent: '— choose a client —' }));
    for (const c of clients) {
      pick.append(el('option', { value: c.id, textContent: c.id + (c.name ? ' — ' + c.name : '') + (c.invalid ? ' (invalid settings)' : '') }));
    }
    pick.value = clients.some((c) => c.id === keep) ? keep : '';
    $('client-info').textContent = body.total > clients.length
      ? 'Showing ' + clients.length + ' of ' + body.total + ' clients; type the id of another below.'
      : clients.length + ' client(s).';
  }

  function outcomeText(body) {
    if (body && body.issue && body.issue.length) return body.issue.map((i) => i.diagnostics).join('; ');
    return JSON.stringify(body);
  }

  function describe(c) {
    if (c.invalid) return c.id + ': its stored settings are invalid: ' + c.invalid;
    const parts = [
      'grant types: ' + (c.grant_types.length ? c.grant_types.join(', ') : 'none'),
      c.confidential ? 'confidential (has a secret; type it above)' : 'public (no secret)',
    ];
    if (c.first_party) parts.push('first party (no consent page)');
    if (c.grant_types.includes('authorization_code')) {
      parts.push(c.callback ? 'the sandbox callback is registered' : 'the sandbox callback is NOT among its redirect URIs, so the code flows will stop at an error page');
    }
    return parts.join(' · ');
  }

  function pickClient() {
    const c = clients.find((x) => x.id === $('client-pick').value);
    if (!c) return;
    $('client-id').value = c.id;
    $('client-secret').value = '';
    $('client-auth').value = c.confidential ? 'basic' : 'none';
    $('client-info').textContent = describe(c);
  }

  function restoreClient(c) {
    if (clients.some((x) => x.id === c.id)) {
      $('client-pick').value = c.id;
      pickClient();
    }
    $('client-id').value = c.id;
    $('client-secret').value = c.secret;
    $('client-auth').value = c.auth;
  }

  async function createClient(ev) {
    ev.preventDefault();
    const body = {
      id: $('new-id').value.trim(),
      name: $('new-name').value.trim(),
      secret: $('new-secret').value,
      grant_types: [...document.querySelectorAll('input[name=grant]:checked')].map((i) => i.value),
      first_party: $('new-first-party').checked,
      jwt: $('new-jwt').checked,
    };
    const out = $('create-result');
    out.className = '';
    let res, doc;
    try {
      res = await fetch(base + '/ui/sandbox/api/clients', {
        method: 'POST', credentials: 'same-origin', cache: 'no-store',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRF-Token': csrf },
        body: JSON.stringify(body),
      });
      doc = await res.json();
    } catch (e) {
      out.className = 'error';
      out.textContent = 'The client was not created: ' + e.message;
      return;
    }
    if (res.status !== 201) {
      out.className = 'error';
      out.textContent = 'The client was not created (' + res.status + '): ' + outcomeText(doc);
      return;
    }
    await loadClients();
    $('client-pick').value = doc.id;
    pickClient();
    $('client-secret').value = body.secret;
    $('client-auth').value = body.secret ? 'basic' : 'none';
    out.className = 'done';
    out.textContent = 'Created client ' + doc.id + '. The server never shows its secret again; it is in the secret field above for this page.';
  }

  // ---- wiring ----

  function showFlow(flow) {
    $('flow-about').textContent = flows[flow].about;
    for (const e of document.querySelectorAll('.password-only')) e.hidden = flow !== 'password';
  }

  for (const r of document.querySelectorAll('input[name=flow]')) {
    r.addEventListener('change', () => {
      showFlow(r.value);
      $('scope').value = flows[r.value].scope;
    });
  }
  $('client-pick').addEventListener('change', pickClient);
  $('client-reload').addEventListener('click', loadClients);
  $('create-form').addEventListener('submit', createClient);
  $('run').addEventListener('click', run);
  $('call-patient').addEventListener('click', callPatient);
  $('introspect').addEventListener('click', () => tokenInfo('introspect'));
  $('revoke').addEventListener('click', () => tokenInfo('revoke'));
  $('refresh').addEventListener('click', refresh);
  $('clear').addEventListener('click', () => {
    log = [];
    $('steps').replaceChildren();
  });

  // The code flows come back to the base URL's callback: opened at another origin
  // (127.0.0.1 for localhost), this tab would never see them return.
  if (new URL(origin).origin !== window.location.origin) {
    const w = $('origin-warning');
    w.textContent = 'This page is open at ' + window.location.origin + ', but the server\'s base URL (FHIRBOX_BASE_URL) is ' + origin +
      ': open the sandbox at ' + origin + '/ui/sandbox, or the authorization code flows will come back to another origin, without this tab\'s state.';
    w.hidden = false;
  }

  showFlow(selectedFlow());
  $('scope').value = flows[selectedFlow()].scope;
  loadClients().then(() => {
    if (window.location.pathname === base + '/ui/sandbox/callback') {
      callback();
    } else {
      // An authorization request that never came back (an error page, a closed consent
      // page) is abandoned: its verifier and the client's secret go.
      sessionStorage.removeItem(PENDING);
    }
  });
})();
