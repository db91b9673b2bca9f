// The guide's flow in the console, in a real browser, on a fresh data folder: Create an
// organization, Sign out and in (a wrong password first), import the sample contract by
// URL, edit the target, Create, Configure and Deploy (External), see a chat broadcast in
// the test console from a second client, Promote, Publish with a display name; then, as
// a consumer, find the API in the developer portal, sign up, create an application,
// subscribe, get a key and connect with it; and the pages on a phone.
// Environment: CONSOLE (the management address), SETUP_TOKEN, CONTRACT_URL (the sample
// contract, served on 127.0.0.1), TARGET (a chat backend), SHOTS (screenshot folder).
import { launch, check } from './browser.mjs';

const base = process.env.CONSOLE;
const token = process.env.SETUP_TOKEN;
const shots = process.env.SHOTS;
const contractUrl = process.env.CONTRACT_URL;
const target = process.env.TARGET;
const admin = { email: 'tony@stark.example', password: 'correct horse battery' };
const b = await launch({ shots });
try {
  const page = await b.page('desktop');

  // First visit: the console asks to create an organization.
  const first = await page.goto(`${base}/console/`);
  check(page.url().endsWith('/console/create'), `first visit lands on Create (${page.url()})`);
  const csp = first.headers()['content-security-policy'] || '';
  check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), `a strict CSP (${csp})`);
  await page.getByRole('heading', { name: 'Create an organization' }).waitFor();
  await b.shot(page, 'create-organization');

  // The keyboard reaches the skip link first.
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement?.textContent) === 'Skip to content', 'Tab reaches "Skip to content" first');

  // A wrong setup token is refused with a readable message; what was typed stays.
  b.refusedOn('/console/create');
  await page.getByLabel('Organization name').fill('Stark Industries');
  await page.getByLabel('Admin email').fill(admin.email);
  await page.getByLabel('Password').fill(admin.password);
  await page.getByLabel('Setup token').fill('not-the-token');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('alert').filter({ hasText: 'setup token' }).waitFor();
  check(await page.getByLabel('Organization name').inputValue() === 'Stark Industries', 'the name is kept');
  await b.shot(page, 'create-refused');

  // Create: the organization's default project opens on Project Home.
  await page.getByLabel('Password').fill(admin.password);
  await page.getByLabel('Setup token').fill(token);
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('heading', { name: /Project Home/ }).waitFor();
  check(page.url().endsWith('/console/home'), 'Create lands on Project Home');
  await page.getByText('Stark Industries', { exact: true }).waitFor();
  await page.getByText('No API proxies in this project yet.').waitFor();
  await b.shot(page, 'project-home');
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'asyncgate_session');
  check(session && session.httpOnly && session.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict');

  // Sign out, then sign in: a wrong password first.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.goto(`${base}/console/home`);
  check(page.url().endsWith('/console/sign-in'), 'signed out, Project Home asks to sign in');
  await page.getByLabel('Email').fill(admin.email);
  b.refusedOn('/console/sign-in');
  await page.getByLabel('Password').fill('wrong password!');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'wrong email or password' }).waitFor();
  await b.shot(page, 'sign-in-refused');
  await page.getByLabel('Password').fill(admin.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: /Project Home/ }).waitFor();

  // Import API Contract: WebSocket, by URL, Next, the target edited, Create.
  await page.getByRole('link', { name: 'Import API Contract' }).click();
  await page.getByRole('heading', { name: 'Import API Contract' }).waitFor();
  await page.getByLabel('WebSocket').check();
  await page.getByLabel('URL', { exact: true }).check();
  b.refusedOn('/console/import');
  // Nothing listens on port 1: the fetch fails, and the page says why.
  await page.getByLabel('AsyncAPI contract URL').fill('http://127.0.0.1:1/asyncapi.yaml');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('alert').waitFor();
  await b.shot(page, 'import-refused');
  await page.getByLabel('AsyncAPI contract URL').fill(contractUrl);
  await b.shot(page, 'import-api-contract');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('heading', { name: 'Create an API Proxy' }).waitFor();
  check(await page.getByLabel('Name').inputValue() === 'Chat API', 'the name comes from the contract');
  await page.getByLabel('Target').fill(target);
  await b.shot(page, 'edit-values');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.locator('.channel h3').filter({ hasText: 'PUB' }).filter({ hasText: 'SUB' }).waitFor();
  await b.shot(page, 'overview');
  const apiPath = new URL(page.url()).pathname;

  // Settings: a rate limit and message validation, saved; an API key, shown once; a
  // limit that is not a number is refused on the form.
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.getByRole('heading', { name: 'Settings' }).waitFor();
  await page.getByLabel('Messages per second').fill('many');
  b.refusedOn('/settings');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('alert').filter({ hasText: 'not a whole number' }).waitFor();
  await page.getByLabel('Messages per second').fill('50');
  await page.getByLabel('Message validation').selectOption('report');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('heading', { name: 'Settings' }).waitFor();
  check(await page.getByLabel('Messages per second').inputValue() === '50', 'the rate limit is saved');
  check(await page.getByLabel('Message validation').inputValue() === 'report', 'message validation is saved');
  await page.getByRole('button', { name: 'Create API key' }).click();
  await page.locator('#shown-once').waitFor();
  await b.shot(page, 'settings');

  // Deploy: Configure and Deploy, External.
  await page.getByRole('link', { name: 'Deploy' }).click();
  await page.getByRole('heading', { name: 'Deploy', exact: true }).waitFor();
  const dev = page.locator('section.env', { has: page.getByRole('heading', { name: 'Development' }) });
  await dev.locator('summary', { hasText: /^Deploy$/ }).click();
  await dev.locator('summary', { hasText: 'Configure and Deploy' }).click();
  await dev.getByLabel('External').check();
  await b.shot(page, 'configure-and-deploy');
  await dev.getByRole('button', { name: 'Deploy', exact: true }).click();
  await dev.getByText('Deployed', { exact: true }).waitFor();
  check(await dev.locator('dd', { hasText: /^External$/ }).count() === 1, 'deployed External');
  await b.shot(page, 'deployed-development');

  // Test → Console: two clients in one chat room; the first sees the second's message.
  const alice = page;
  await alice.getByRole('link', { name: 'Console' }).click();
  await alice.getByRole('heading', { name: 'Console' }).waitFor();
  const bob = await page.context().newPage();
  b.watchPage(bob, 'second client');
  await bob.goto(alice.url());
  for (const [who, name] of [[alice, 'alice'], [bob, 'bob']]) {
    check((await who.getByLabel('URL', { exact: true }).inputValue()).startsWith('ws://'), 'the full ws URL is shown');
    await who.getByRole('button', { name: 'Connect', exact: true }).click();
    await who.locator('#tc-log li.log-connected').waitFor();
    await who.getByLabel('Message').fill(JSON.stringify({ type: 'Connect', username: name }));
    await who.getByRole('button', { name: 'Send' }).click();
    await who.locator('#tc-log li.log-sent').first().waitFor();
  }
  await bob.getByLabel('Message').fill(JSON.stringify({ type: 'Data', message: 'hello from bob' }));
  await bob.getByRole('button', { name: 'Send' }).click();
  await alice.locator('#tc-log li.log-received', { hasText: 'hello from bob' }).waitFor();
  await b.shot(alice, 'test-console-broadcast');
  await b.shot(bob, 'test-console-sender');
  await bob.getByRole('button', { name: 'Disconnect' }).click();
  const closed = await bob.locator('#tc-log li.log-closed').textContent();
  check(closed.includes('code 1000'), `a clean close: ${closed}`);
  await bob.close();
  await alice.getByRole('button', { name: 'Disconnect' }).click();
  await alice.locator('#tc-log li.log-closed').waitFor();

  // Promote to Production.
  await page.goto(`${base}${apiPath}/deploy`);
  await dev.getByRole('button', { name: 'Promote' }).click();
  const prod = page.locator('section.env', { has: page.getByRole('heading', { name: 'Production' }) });
  await prod.getByText('Deployed', { exact: true }).waitFor();
  await b.shot(page, 'promoted');

  // Lifecycle: Publish, with a display name, Confirm.
  await page.getByRole('link', { name: 'Lifecycle' }).click();
  await page.getByRole('heading', { name: 'Lifecycle' }).waitFor();
  await page.locator('summary', { hasText: 'Publish' }).click();
  await page.getByRole('dialog', { name: 'Publish API' }).waitFor();
  await page.getByLabel('Display name').fill('Chat Service');
  await b.shot(page, 'publish-api');
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.locator('.api-nav .state', { hasText: 'Published' }).waitFor();
  await b.shot(page, 'published');

  // The organization lets consumers sign up in the developer portal.
  await page.getByRole('link', { name: 'Organization' }).click();
  await page.getByLabel('Let consumers sign up as subscribers').check();
  await page.getByRole('button', { name: 'Save' }).click();
  check(await page.getByLabel('Let consumers sign up as subscribers').isChecked(), 'sign-up is open');

  // A consumer, in a browser of their own: the catalogue, the API's documentation.
  const consumer = await b.page('consumer');
  await consumer.goto(`${base}/portal/`);
  await consumer.getByRole('link', { name: 'Chat Service' }).click();
  await consumer.getByRole('heading', { name: /Chat Service/ }).first().waitFor();
  await consumer.getByRole('heading', { name: 'Endpoints' }).waitFor();
  check(await consumer.locator('pre.code', { hasText: 'wscat -c' }).count() === 1, 'a wscat snippet with the real URL');
  await b.shot(consumer, 'portal-api');
  const apiUrl = consumer.url();

  // Sign up, create an application, subscribe it, get a key.
  await consumer.getByRole('link', { name: 'Sign up' }).first().click();
  await consumer.getByLabel('Organization').selectOption({ label: 'Stark Industries' });
  await consumer.getByLabel('Email').fill('peter@parker.example');
  await consumer.getByLabel('Password').fill('with great power');
  await consumer.getByRole('button', { name: 'Sign up' }).click();
  await consumer.getByRole('heading', { name: 'Applications' }).waitFor();
  await consumer.getByLabel('Application name').fill('Daily Bugle chat');
  await consumer.getByRole('button', { name: 'Create' }).click();
  await consumer.getByText(/Client secret of Daily Bugle chat/).waitFor();
  await b.shot(consumer, 'application-created');
  await consumer.getByRole('button', { name: 'Subscribe' }).click();
  await consumer.getByText(/Chat Service · /).waitFor();
  await consumer.getByLabel('Environment').selectOption('production');
  await consumer.getByRole('button', { name: 'Generate API key' }).click();
  await consumer.getByText(/API key for production/).waitFor();
  const key = (await consumer.locator('#shown-once').textContent()).trim();
  check(key.length > 20, 'the key is shown once');
  await b.shot(consumer, 'api-key');

  // Connect with it, from the API's page.
  await consumer.goto(apiUrl);
  await consumer.getByLabel('Environment').selectOption({ label: 'Production' });
  await consumer.getByLabel('API key').fill(key);
  await consumer.getByRole('button', { name: 'Connect', exact: true }).click();
  await consumer.locator('#tc-log li.log-connected').waitFor();
  await consumer.getByLabel('Message').fill(JSON.stringify({ type: 'Connect', username: 'peter' }));
  await consumer.getByRole('button', { name: 'Send' }).click();
  await consumer.locator('#tc-log li.log-received', { hasText: 'peter' }).waitFor();
  await b.shot(consumer, 'connected-with-key');

  // The portal's pages on a phone: no sideways scrolling.
  const phonePortal = await b.page('phone portal', { width: 390, height: 844 });
  for (const path of ['/portal/', new URL(apiUrl).pathname]) {
    await phonePortal.goto(`${base}${path}`);
    const wide = await phonePortal.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    check(!wide, `${path} fits a phone without sideways scrolling`);
  }
  await b.shot(phonePortal, 'portal-api-phone');

  // On a phone.
  const phone = await b.page('phone', { width: 390, height: 844 });
  await phone.goto(`${base}/console/`);
  await phone.getByRole('heading', { name: 'Sign in' }).waitFor();
  await b.shot(phone, 'sign-in-phone');
  await phone.getByLabel('Email').fill(admin.email);
  await phone.getByLabel('Password').fill(admin.password);
  await phone.getByRole('button', { name: 'Sign in' }).click();
  await phone.getByRole('heading', { name: /Project Home/ }).waitFor();
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  check(!overflow, 'Project Home fits a phone without sideways scrolling');
  await b.shot(phone, 'project-home-phone');
  for (const path of [apiPath, `${apiPath}/deploy`, `${apiPath}/test`, `${apiPath}/settings`]) {
    await phone.goto(`${base}${path}`);
    const wide = await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    check(!wide, `${path} fits a phone without sideways scrolling`);
  }
  await b.shot(phone, 'test-console-phone');

  check(b.errors.length === 0, `no errors in the browser console:\n${b.errors.join('\n')}`);
  console.log(JSON.stringify({ done: true }));
} finally {
  await b.browser.close();
}
