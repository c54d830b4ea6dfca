// The "View all" page is the product's <tidings-inbox> (filters, day headers, load more,
// per-item actions, live through the bell's stream): nothing of the demo's own is needed here.
import '/static/tidings-inbox.js';
