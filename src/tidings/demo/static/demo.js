// Small progressive enhancements for the demo pages. Everything works without it.
//
// Live parts: a page that shows what a notification can change names the route of its parts
// (`data-live-page`) and marks them (`data-live="<part>"`). When the bell reports a
// notification about a booking, or the stream is back after a drop (something may have been
// missed), the page fetches its parts and swaps them in place: no banner, no reload. A part
// with a `data-live-key` (a form) is swapped only when its key changed, so nothing typed is lost.

const livePage = document.querySelector('[data-live-page]');

/** Whether a notification changes what this page shows: one about a booking (or, on the
 *  customers page, `data-live-on="customer"`, one naming a customer); on a booking's page, about
 *  that booking. */
function touches(notification) {
  const data = notification?.data ?? {};
  const group = String(notification?.group ?? '');
  if (livePage.dataset.liveOn === 'customer') return data.customer_id != null;
  if (data.booking_id == null && !group.startsWith('booking:')) return false;
  const booking = livePage.dataset.booking;
  if (!booking) return true; // the dashboard and the lists: any booking or payment
  const id = data.booking_id ?? group.slice('booking:'.length);
  return String(id) === booking;
}

function swap(current, html) {
  const template = document.createElement('template');
  template.innerHTML = html.trim();
  const next = template.content.firstElementChild;
  if (!next || next.dataset.live !== current.dataset.live) return;
  if (current.dataset.liveKey !== undefined && current.dataset.liveKey === next.dataset.liveKey) return;
  if (current.isEqualNode(next)) return;
  const open = [...current.querySelectorAll('details[open][data-confirm]')].map((d) => d.dataset.confirm);
  for (const name of open) next.querySelector(`details[data-confirm="${name}"]`)?.setAttribute('open', '');
  current.replaceWith(next);
  next.classList.add('live-updated');
  setTimeout(() => next.classList.remove('live-updated'), 1600);
}

let inFlight = null;
let again = false;

/** Fetches the page's parts and swaps them in; calls that arrive meanwhile make one more. */
async function refreshParts() {
  if (!livePage) return;
  if (inFlight) {
    again = true;
    return inFlight;
  }
  inFlight = (async () => {
    try {
      do {
        again = false;
        const response = await fetch(livePage.dataset.livePage, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
        if (!response.ok) return; // signed out, or the booking is gone: the next page load says so
        const { parts } = await response.json();
        for (const [name, html] of Object.entries(parts ?? {})) {
          const current = document.querySelector(`[data-live="${CSS.escape(name)}"]`);
          if (current && typeof html === 'string') swap(current, html);
        }
        document.dispatchEvent(new CustomEvent('demo-live-updated'));
      } while (again);
    } catch {
      // offline: the stream's return triggers the next refresh
    } finally {
      inFlight = null;
    }
  })();
  return inFlight;
}

if (livePage) {
  document.addEventListener('tidings-notification', (event) => {
    if (touches(event.detail?.notification)) refreshParts();
  });
  let wasDown = false;
  document.addEventListener('tidings-state', (event) => {
    const state = event.detail?.state;
    if (state === 'open' && wasDown) refreshParts();
    if (state === 'reconnecting' || state === 'closed') wasDown = true;
    if (state === 'open') wasDown = false;
  });
}

// The account menu closes on Escape and on a click elsewhere; so does an open confirmation.
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
document.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape') return;
  for (const confirm of document.querySelectorAll('details[data-confirm][open]')) {
    confirm.open = false;
    confirm.querySelector('summary')?.focus();
  }
});

document.addEventListener('click', (event) => {
  const keep = event.target.closest?.('[data-confirm-no]');
  const confirm = keep?.closest('details[data-confirm]');
  if (!confirm) return;
  confirm.open = false;
  confirm.querySelector('summary')?.focus();
});

for (const select of document.querySelectorAll('select[data-autosubmit]')) {
  select.addEventListener('change', () => select.form?.requestSubmit());
}
