// The demo chat client: REST for history and posting, the WebSocket for everything live.
// The token comes from the URL fragment (#token=…&conversation=…) or the form; it is never put in a
// URL the server logs except the WebSocket's own query (as the SSE inbox stream does).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { token: "", conversation: null, me: null, people: {}, messages: new Map(), ws: null,
                  typingTimer: null, lastTyping: 0, readSent: 0 };

  function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers.Authorization = "Inbox " + state.token;
    if (opts.body) { opts.headers["Content-Type"] = "application/json"; }
    return fetch("/api/v1" + path, opts).then((r) => r.json().then((data) => {
      if (!r.ok) { throw new Error((data && data.message) || ("HTTP " + r.status)); }
      return data;
    }));
  }

  function showError(text) { const el = $("error"); el.textContent = text; el.hidden = !text; }
  function setStatus(text, online) { const el = $("status"); el.textContent = text; el.classList.toggle("online", !!online); }

  function renderPeople() {
    const list = $("participants");
    list.textContent = "";
    Object.values(state.people).filter((p) => !p.left_at).forEach((p) => {
      const li = document.createElement("li");
      li.dataset.participant = p.id;
      li.className = p.online ? "online" : "offline";
      li.textContent = p.display_name + (p.id === state.me ? " (you)" : "");
      list.appendChild(li);
    });
  }

  function othersRead(index) {
    return Object.values(state.people).some((p) => p.id !== state.me && !p.left_at && p.last_read_index >= index);
  }

  function receiptState(m) {
    if (othersRead(m.index)) { return "read"; }
    return m.delivered ? "delivered" : "sent";
  }

  function renderMessage(m) {
    let li = document.querySelector('[data-message="' + m.id + '"]');
    if (!li) {
      li = document.createElement("li");
      li.dataset.message = m.id;
      li.dataset.index = m.index;
      const list = $("messages");
      const after = Array.from(list.children).find((el) => Number(el.dataset.index) > m.index);
      list.insertBefore(li, after || null);
    }
    const mine = m.sender && m.sender.participant_id === state.me;
    li.className = "msg" + (mine ? " mine" : "") + (m.deleted ? " deleted" : "");
    li.textContent = "";
    const who = document.createElement("div");
    who.className = "who";
    who.textContent = m.sender ? m.sender.display_name : "system";
    const body = document.createElement("div");
    body.className = "body";
    if (m.deleted) { body.textContent = "message deleted"; } else { body.innerHTML = m.body_html; } // sanitised server-side (nh3)
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = new Date(m.created_at).toLocaleTimeString() + (m.edited_at ? " · edited" : "");
    if (mine) {
      const receipt = document.createElement("span");
      receipt.className = "receipt";
      receipt.dataset.state = receiptState(m);
      receipt.textContent = " · " + receipt.dataset.state;
      meta.appendChild(receipt);
    }
    li.append(who, body, meta);
  }

  function rerenderReceipts() { state.messages.forEach(renderMessage); }

  function scrollDown() { const list = $("messages"); list.scrollTop = list.scrollHeight; }

  function markRead() {
    const last = Math.max(0, ...Array.from(state.messages.values()).map((m) => m.index));
    if (last > state.readSent && document.visibilityState === "visible" && state.ws && state.ws.readyState === 1) {
      state.readSent = last;
      state.ws.send(JSON.stringify({ type: "read", conversation_id: state.conversation.id, index: last }));
    }
  }

  function onEvent(ev) {
    const cid = state.conversation && state.conversation.id;
    if (ev.type === "ready") {
      setStatus("Connected", true);
      (ev.online || []).forEach((pid) => { if (state.people[pid]) { state.people[pid].online = true; } });
      renderPeople();
      markRead();
    } else if (ev.type === "message.created" || ev.type === "message.edited" || ev.type === "message.deleted") {
      const m = ev.message;
      if (m.conversation_id !== cid) { return; }
      const known = state.messages.get(m.id);
      m.delivered = known ? known.delivered : false;
      state.messages.set(m.id, m);
      renderMessage(m);
      if (ev.type === "message.created" && m.sender && m.sender.participant_id !== state.me) {
        hideTyping();
        state.ws.send(JSON.stringify({ type: "ack", conversation_id: cid, message_ids: [m.id] }));
        markRead();
      }
      scrollDown();
    } else if (ev.type === "receipt" && ev.conversation_id === cid) {
      if (ev.kind === "read" && state.people[ev.participant_id]) {
        state.people[ev.participant_id].last_read_index = ev.index;
      } else if (ev.kind === "delivered") {
        ev.message_ids.forEach((id) => { const m = state.messages.get(id); if (m) { m.delivered = true; } });
      }
      rerenderReceipts();
    } else if (ev.type === "typing" && ev.conversation_id === cid) {
      const el = $("typing");
      el.textContent = (ev.display_name || "Someone") + " is typing…";
      el.hidden = false;
      clearTimeout(state.typingTimer);
      state.typingTimer = setTimeout(hideTyping, ev.expires_in_ms || 5000);
    } else if (ev.type === "presence" && ev.conversation_id === cid && state.people[ev.participant_id]) {
      state.people[ev.participant_id].online = ev.status === "online";
      renderPeople();
    } else if (ev.type === "participant.joined" && ev.conversation_id === cid) {
      state.people[ev.participant.id] = ev.participant;
      renderPeople();
    } else if (ev.type === "error") {
      showError(ev.message);
    }
  }

  function hideTyping() { $("typing").hidden = true; }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/ws/conversations?token=" + encodeURIComponent(state.token));
    state.ws = ws;
    ws.addEventListener("message", (e) => onEvent(JSON.parse(e.data)));
    ws.addEventListener("close", (e) => {
      setStatus("Disconnected (" + e.code + ")", false);
      if (e.code < 4000) { setTimeout(connect, 2000); } // 44xx: the token is refused, do not retry
    });
  }

  function open(token, wanted) {
    state.token = token;
    showError("");
    api("/conversations").then((data) => {
      const found = data.results.find((c) => !wanted || c.id === wanted) || data.results[0];
      if (!found) { throw new Error("This user takes part in no conversation."); }
      return api("/conversations/" + found.id);
    }).then((conv) => {
      state.conversation = conv;
      state.me = conv.me;
      $("title").textContent = conv.subject || "Conversation";
      conv.participants.forEach((p) => { state.people[p.id] = p; });
      return api("/conversations/" + conv.id + "/messages?limit=50");
    }).then((page) => {
      $("token-form").hidden = true;
      $("composer").hidden = false;
      page.results.forEach((m) => { m.delivered = false; state.messages.set(m.id, m); renderMessage(m); });
      renderPeople();
      scrollDown();
      connect();
    }).catch((err) => showError(err.message));
  }

  function send(ev) {
    ev.preventDefault();
    const box = $("body");
    const text = box.value.trim();
    if (!text) { return; }
    const key = "web-" + Date.now() + "-" + Math.random().toString(36).slice(2);
    api("/conversations/" + state.conversation.id + "/messages",
        { method: "POST", body: JSON.stringify({ body: text, client_key: key }) })
      .then((m) => { box.value = ""; showError(""); if (!state.messages.has(m.id)) { m.delivered = false; state.messages.set(m.id, m); renderMessage(m); scrollDown(); } })
      .catch((err) => showError(err.message));
  }

  function typing() {
    const now = Date.now();
    if (state.ws && state.ws.readyState === 1 && now - state.lastTyping > 2000) {
      state.lastTyping = now;
      state.ws.send(JSON.stringify({ type: "typing", conversation_id: state.conversation.id }));
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", (ev) => { ev.preventDefault(); open($("token").value.trim(), null); });
    $("composer").addEventListener("submit", send);
    $("body").addEventListener("input", typing);
    $("body").addEventListener("keydown", (ev) => { if (ev.key === "Enter" && !ev.shiftKey) { send(ev); } });
    document.addEventListener("visibilitychange", markRead);
    const params = new URLSearchParams(location.hash.slice(1));
    if (params.get("token")) { open(params.get("token"), params.get("conversation")); }
  });
}());
