// Small progressive enhancements for the demo pages. Everything works without it.

const LIVE_PAGES = new Set(['dashboard', 'bookings', 'customers', 'payments']);

// A live notification about something this page lists: offer a refresh (never reload by itself,
// so nobody loses what they were typing).
document.addEventListener('tidings-notification', (event) => {
  const { notification, live } = event.detail ?? {};
  if (!live || !notification || !LIVE_PAGES.has(document.body.dataset.page)) return;
  const banner = document.querySelector('.live-banner');
  if (!banner) return;
  banner.querySelector('.live-text').textContent = `New: ${notification.title ?? 'activity'}`;
  banner.querySelector('a').href = window.location.href;
  banner.hidden = false;
});

// The account menu closes on Escape and on a click elsewhere.
const menu = document.querySelector('.usermenu');
if (menu) {
  document.addEventListener('click', (event) => {
    if (menu.open && !menu.contains(event.target)) menu.open = false;
  });
  menu.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && menu.open) {
      menu.open = false;
      menu.querySelector('summary').focus();
    }
  });
}

for (const select of document.querySelectorAll('select[data-autosubmit]')) {
  select.addEventListener('change', () => select.form?.requestSubmit());
}
