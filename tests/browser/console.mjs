// The console in a real browser, on a fresh data folder: Create an organization, Project
// Home, Sign out, Sign in (a wrong password first), and the same pages on a phone.
// Environment: CONSOLE (the management address), SETUP_TOKEN, SHOTS (screenshot folder).
import { launch, check } from './browser.mjs';

const base = process.env.CONSOLE;
const token = process.env.SETUP_TOKEN;
const shots = process.env.SHOTS;
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

  check(b.errors.length === 0, `no errors in the browser console:\n${b.errors.join('\n')}`);
  console.log(JSON.stringify({ done: true }));
} finally {
  await b.browser.close();
}
