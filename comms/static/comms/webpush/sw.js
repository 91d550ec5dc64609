/* comms Web Push service worker: shows what comms sends (RFC 8030 push, decrypted by the browser).
   Drop it at the root of your site (or serve it with a Service-Worker-Allowed header) so its scope
   covers the pages that subscribe. The payload is JSON: {title, body, tag, url, icon, data, message_id}. */
"use strict";

self.addEventListener("push", function (event) {
  var msg = {};
  try {
    msg = event.data ? event.data.json() : {};
  } catch (e) {
    msg = { body: event.data ? event.data.text() : "" };
  }
  var options = {
    body: msg.body || "",
    data: { url: msg.url || "", message_id: msg.message_id || "", data: msg.data || {} }
  };
  if (msg.tag) { options.tag = msg.tag; options.renotify = true; }  // a newer push with the same collapse key replaces it
  if (msg.icon) { options.icon = msg.icon; }
  event.waitUntil(self.registration.showNotification(msg.title || "Notification", options));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = event.notification.data && event.notification.data.url;
  if (url) { event.waitUntil(self.clients.openWindow(url)); }
});
