// The test console (the console's Test page, the portal's try-out): connect to a deployed
// API through the gateway, send messages and log
// everything that happens, with times. No framework; the page carries its configuration
// in data-config (environments with channel URLs, channels with parameters and examples).
(() => {
  const root = document.getElementById('test-console');
  if (!root) return;
  const config = JSON.parse(root.dataset.config);
  const $ = (id) => document.getElementById(id);
  const env = $('tc-env'), channel = $('tc-channel'), params = $('tc-params');
  const url = $('tc-url'), payload = $('tc-payload'), log = $('tc-log');
  const connectButton = $('tc-connect'), disconnectButton = $('tc-disconnect'), sendButton = $('tc-send');
  const state = $('tc-state');
  let socket = null;

  for (const e of config.environments) env.add(new Option(e.title, e.name));
  for (const c of config.channels) channel.add(new Option(c.address, c.address));

  const currentChannel = () => config.channels.find((c) => c.address === channel.value);
  const currentEnv = () => config.environments.find((e) => e.name === env.value);

  function showParameters() {
    params.replaceChildren();
    for (const p of currentChannel()?.parameters || []) {
      const label = document.createElement('label');
      label.htmlFor = `tc-param-${p}`;
      label.textContent = p;
      const input = document.createElement('input');
      input.id = `tc-param-${p}`;
      input.dataset.param = p;
      input.required = true;
      input.addEventListener('input', showUrl);
      params.append(label, input);
    }
  }

  function showUrl() {
    const pair = (currentEnv()?.channels || []).find(([address]) => address === channel.value);
    let target = pair ? pair[1] : '';
    for (const input of params.querySelectorAll('input[data-param]')) {
      target = target.replace(`{${input.dataset.param}}`, encodeURIComponent(input.value));
    }
    const query = $('tc-query').value.trim().replace(/^\?/, '');
    if (query) target += (target.includes('?') ? '&' : '?') + query;
    url.value = target;
  }

  function prefill() {
    const examples = currentChannel()?.examples || [];
    if (examples.length) payload.value = examples[0];
  }

  function stamp() {
    return new Date().toISOString().replace('T', ' ').replace('Z', '');
  }

  function entry(kind, text) {
    const li = document.createElement('li');
    li.className = `log-${kind.toLowerCase()}`;
    const time = document.createElement('time');
    time.textContent = stamp();
    const what = document.createElement('strong');
    what.textContent = kind;
    const body = document.createElement('span');
    body.textContent = text;
    li.append(time, ' ', what, ' ', body);
    log.append(li);
    li.scrollIntoView({ block: 'nearest' });
  }

  function connected(on) {
    connectButton.disabled = on;
    disconnectButton.disabled = !on;
    sendButton.disabled = !on;
    env.disabled = on;
    channel.disabled = on;
    state.textContent = on ? 'Connected' : 'Not connected';
  }

  async function testToken() {
    const res = await fetch(config.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': config.csrf },
      body: JSON.stringify({ environment: env.value }),
      credentials: 'same-origin',
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.detail || `the test token was refused (${res.status})`);
    return body.token;
  }

  async function connect() {
    showUrl();
    const missing = [...params.querySelectorAll('input[data-param]')].find((i) => !i.value.trim());
    if (missing) {
      entry('Error', `fill in the channel parameter ${missing.dataset.param}`);
      missing.focus();
      return;
    }
    // The publisher's console asks for a short-lived test token; the portal's try-out
    // uses the API key the subscriber pastes.
    let credential;
    if (config.tokenUrl) {
      connectButton.disabled = true;
      state.textContent = 'Connecting…';
      try {
        credential = `access_token.${await testToken()}`;
      } catch (e) {
        entry('Error', e.message);
        connected(false);
        return;
      }
    } else {
      const key = $('tc-key')?.value.trim();
      if (!key) {
        entry('Error', 'paste the API key of one of your applications');
        $('tc-key')?.focus();
        return;
      }
      connectButton.disabled = true;
      state.textContent = 'Connecting…';
      credential = `apikey.${key}`;
    }
    const protocols = [credential];
    const extra = $('tc-protocol').value.trim();
    if (extra) protocols.push(extra);
    const ws = new WebSocket(url.value, protocols);
    ws.binaryType = 'arraybuffer';
    socket = ws;
    ws.addEventListener('open', () => {
      connected(true);
      entry('Connected', url.value);
    });
    ws.addEventListener('message', (m) => {
      if (typeof m.data === 'string') {
        entry('Received', m.data);
      } else {
        const bytes = new Uint8Array(m.data);
        const hex = [...bytes.slice(0, 64)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
        entry('Received', `binary, ${bytes.length} bytes: ${hex}${bytes.length > 64 ? ' …' : ''}`);
      }
    });
    ws.addEventListener('close', (c) => {
      entry('Closed', `code ${c.code}${c.reason ? `, reason: ${c.reason}` : ''}`);
      if (socket === ws) socket = null;
      connected(false);
    });
    ws.addEventListener('error', () => {
      if (ws.readyState !== WebSocket.OPEN) state.textContent = 'Could not connect';
    });
  }

  function send() {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const binary = document.querySelector('input[name="tc-kind"]:checked')?.value === 'binary';
    const text = payload.value;
    if (binary) {
      const bytes = new TextEncoder().encode(text);
      socket.send(bytes);
      entry('Sent', `binary, ${bytes.length} bytes`);
    } else {
      socket.send(text);
      entry('Sent', text);
    }
  }

  async function copy(text, button) {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Select and copy';
    }
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  }

  env.addEventListener('change', showUrl);
  channel.addEventListener('change', () => { showParameters(); showUrl(); prefill(); });
  $('tc-query').addEventListener('input', showUrl);
  connectButton.addEventListener('click', connect);
  disconnectButton.addEventListener('click', () => socket?.close(1000, 'closed from the test console'));
  sendButton.addEventListener('click', send);
  $('tc-copy-url').addEventListener('click', (e) => copy(url.value, e.currentTarget));
  $('tc-copy-log').addEventListener('click', (e) => copy([...log.children].map((li) => li.textContent).join('\n'), e.currentTarget));
  $('tc-clear').addEventListener('click', () => log.replaceChildren());

  showParameters();
  showUrl();
  prefill();
})();
