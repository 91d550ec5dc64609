/* comms Web Push subscribe script: ask for permission, subscribe this browser, hand the subscription to comms.

   <script src="https://comms.example.com/static/comms/webpush/subscribe.js" defer
           data-api="https://comms.example.com" data-token="INBOX_TOKEN"
           data-sw="/sw.js" data-scope="/"></script>
   <button data-comms-webpush="subscribe">Turn on notifications</button>
   <button data-comms-webpush="unsubscribe">Turn off</button>
   <p data-comms-webpush-status></p>

   data-token is an inbox token your backend mints for the signed-in user (POST /api/v1/inbox-tokens);
   without one, set data-post to a URL of your own backend that receives the subscription JSON and
   registers it with POST /api/v1/recipients/{id}/webpush. No inline script is needed (CSP-friendly). */
(function () {
  "use strict";
  var me = document.currentScript;
  var cfg = {
    api: (me && me.dataset.api) || "",
    token: (me && me.dataset.token) || "",
    sw: (me && me.dataset.sw) || "/webpush/sw.js",
    scope: (me && me.dataset.scope) || "/webpush/",
    post: (me && me.dataset.post) || ""
  };

  function status(text, kind) {
    var els = document.querySelectorAll("[data-comms-webpush-status]");
    for (var i = 0; i < els.length; i++) {
      els[i].textContent = text;
      els[i].setAttribute("data-state", kind || "info");
    }
  }

  function keyBytes(b64url) {  // the VAPID key as the Uint8Array PushManager.subscribe wants
    var pad = "=".repeat((4 - (b64url.length % 4)) % 4);
    var raw = atob((b64url + pad).replace(/-/g, "+").replace(/_/g, "/"));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  function send(method, body) {
    var url = cfg.post || (cfg.api + "/api/v1/inbox/webpush");
    var headers = { "Content-Type": "application/json" };
    if (cfg.token && !cfg.post) { headers.Authorization = "Inbox " + cfg.token; }
    return fetch(url, { method: method, headers: headers, body: JSON.stringify(body), credentials: "same-origin" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (!r.ok) { throw new Error((data && data.message) || ("HTTP " + r.status)); }
          return data;
        });
      });
  }

  function registration() {
    return navigator.serviceWorker.register(cfg.sw, { scope: cfg.scope })
      .then(function () { return navigator.serviceWorker.ready; });
  }

  function subscribe() {
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
      status("This browser cannot receive push notifications.", "error");
      return Promise.resolve(null);
    }
    status("Asking for permission…");
    return Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") { throw new Error("Notifications are blocked for this site."); }
      return fetch(cfg.api + "/api/v1/webpush/vapid-public-key").then(function (r) {
        if (!r.ok) { throw new Error("Push is not set up on the server."); }
        return r.json();
      });
    }).then(function (key) {
      return registration().then(function (reg) {
        return reg.pushManager.getSubscription().then(function (existing) {
          return existing || reg.pushManager.subscribe({ userVisibleOnly: true,
                                                         applicationServerKey: keyBytes(key.public_key) });
        });
      });
    }).then(function (sub) {
      status("Saving…");
      return send("POST", sub.toJSON ? sub.toJSON() : sub);
    }).then(function (device) {
      status("Notifications are on for this browser.", "ok");
      document.dispatchEvent(new CustomEvent("comms:webpush", { detail: { subscribed: true, device: device } }));
      return device;
    }).catch(function (err) {
      status("Could not turn on notifications: " + err.message, "error");
      document.dispatchEvent(new CustomEvent("comms:webpush", { detail: { subscribed: false, error: err.message } }));
      return null;
    });
  }

  function unsubscribe() {
    if (!("serviceWorker" in navigator)) { return Promise.resolve(null); }
    return navigator.serviceWorker.getRegistration(cfg.scope).then(function (reg) {
      return reg ? reg.pushManager.getSubscription() : null;
    }).then(function (sub) {
      if (!sub) { status("Notifications are off for this browser.", "ok"); return null; }
      var endpoint = sub.endpoint;
      return sub.unsubscribe().then(function () { return send("DELETE", { endpoint: endpoint }); })
        .then(function () { status("Notifications are off for this browser.", "ok"); });
    }).catch(function (err) { status("Could not turn off notifications: " + err.message, "error"); });
  }

  function bind() {
    var buttons = document.querySelectorAll("[data-comms-webpush]");
    for (var i = 0; i < buttons.length; i++) {
      var action = buttons[i].getAttribute("data-comms-webpush");
      buttons[i].addEventListener("click", action === "unsubscribe" ? unsubscribe : subscribe);
    }
  }

  window.commsWebPush = { subscribe: subscribe, unsubscribe: unsubscribe, config: cfg };
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", bind); } else { bind(); }
})();
