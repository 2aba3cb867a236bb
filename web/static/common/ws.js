// The live client of /ws (DESIGN 7): authenticates, subscribes, reconnects with backoff and resumes
// each channel from its last offset; missed events are applied, or the fresh snapshot replaces state.

import * as session from './session.js';

const PING_EVERY = 25e3; // the server closes a connection idle for 300 s; we ping well before
const PONG_WITHIN = 10e3;
const BACKOFF_FIRST = 500;
const BACKOFF_MAX = 20e3;

/**
 * const live = new Live();
 * const stop = live.subscribe('launch:lch_1', {
 *   snapshot(data, msg) {...},   // the channel's full state: on first subscribe and when resume fails
 *   event(name, data, msg) {...}, // one event, live or missed while disconnected, in order
 *   error(code, message) {...},   // the server refused this channel
 * });
 * live.state: 'connecting' | 'live' | 'reconnecting' | 'offline'; live.onState(fn).
 */
export class Live {
  constructor({ url = defaultUrl(), auth = true, onAuthError = null } = {}) {
    this.url = url;
    this.auth = auth;
    this.onAuthError = onAuthError;
    this.channels = new Map(); // name -> {handlers, epoch, offset, ready}
    this.state = 'connecting';
    this.reconnects = 0;
    this.attempt = 0;
    this.ws = null;
    this.closed = false;
    this.stateListeners = new Set();
    this.timers = { retry: null, ping: null, pong: null };
    this.unToken = auth ? session.onToken((s) => this.send({ type: 'auth', token: s.token })) : () => {};
    this.wake = () => { if (!this.ws && !this.closed) this.connectNow(); };
    window.addEventListener('online', this.wake);
    document.addEventListener('visibilitychange', this.wake);
    this.connect();
  }

  subscribe(channel, handlers) {
    const entry = { handlers, epoch: null, offset: null, ready: false };
    this.channels.set(channel, entry);
    this.send(this.subscribeFrame(channel, entry));
    return () => this.unsubscribe(channel, entry);
  }

  unsubscribe(channel, entry) {
    if (this.channels.get(channel) !== entry) return;
    this.channels.delete(channel);
    this.send({ type: 'unsubscribe', channel });
  }

  onState(fn) {
    this.stateListeners.add(fn);
    fn(this.state, this);
    return () => this.stateListeners.delete(fn);
  }

  close() {
    this.closed = true;
    this.unToken();
    window.removeEventListener('online', this.wake);
    document.removeEventListener('visibilitychange', this.wake);
    Object.values(this.timers).forEach(clearTimeout);
    clearInterval(this.timers.ping);
    this.ws?.close(1000, 'bye');
    this.ws = null;
    this.setState('offline');
  }

  /** For tests and the "reconnect" button: drop the socket as if the network failed. */
  drop() {
    this.ws?.close(4000, 'dropped by the client');
  }

  // -- the connection ----------------------------------------------------------------------------

  connect() {
    if (this.closed) return;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const token = this.auth ? session.token() : null;
      if (token) this.send({ type: 'auth', token });
      for (const [name, entry] of this.channels) {
        entry.ready = false;
        this.send(this.subscribeFrame(name, entry));
      }
      clearInterval(this.timers.ping);
      this.timers.ping = setInterval(() => this.ping(), PING_EVERY);
      if (!this.channels.size) this.connected();
    };
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.timers.ping);
      clearTimeout(this.timers.pong);
      if (!this.closed) this.retry();
    };
    ws.onerror = () => {}; // onclose follows and handles it
  }

  connectNow() {
    clearTimeout(this.timers.retry);
    this.connect();
  }

  retry() {
    this.setState(navigator.onLine === false ? 'offline' : 'reconnecting');
    const base = Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * base / 2; // jitter: a restarted server is not hit all at once
    this.attempt += 1;
    clearTimeout(this.timers.retry);
    this.timers.retry = setTimeout(() => {
      this.reconnects += 1;
      this.connect();
    }, delay);
  }

  connected() {
    this.attempt = 0;
    this.setState('live');
  }

  ping() {
    if (!this.send({ type: 'ping' })) return;
    clearTimeout(this.timers.pong);
    this.timers.pong = setTimeout(() => this.ws?.close(4001, 'no pong'), PONG_WITHIN);
  }

  send(frame) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  subscribeFrame(channel, entry) {
    const frame = { type: 'subscribe', channel };
    if (entry.epoch !== null && entry.offset !== null) {
      frame.since = entry.offset;
      frame.epoch = entry.epoch;
    }
    return frame;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.stateListeners.forEach((fn) => fn(state, this));
  }

  // -- frames from the server --------------------------------------------------------------------

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    switch (msg.type) {
      case 'subscribed':
        this.onSubscribed(msg);
        break;
      case 'event':
        this.onEvent(msg);
        break;
      case 'pong':
        clearTimeout(this.timers.pong);
        break;
      case 'error':
        this.onError(msg);
        break;
      default:
        break;
    }
  }

  onSubscribed(msg) {
    const entry = this.channels.get(msg.channel);
    if (!entry) return;
    this.lastResume = msg.recovered === true ? 'recovered' : msg.recovered === false ? 'snapshot' : 'first';
    if (msg.recovered === true && Array.isArray(msg.missed)) {
      for (const e of msg.missed) this.apply(entry, e);
    } else {
      call(entry.handlers.snapshot, msg.snapshot ?? {}, msg);
    }
    entry.epoch = msg.epoch;
    entry.offset = Math.max(msg.offset ?? 0, msg.recovered === true ? (entry.offset ?? 0) : 0);
    entry.ready = true;
    if ([...this.channels.values()].every((c) => c.ready)) this.connected();
  }

  onEvent(msg) {
    const entry = this.channels.get(msg.channel);
    if (!entry || !entry.ready) return; // before `subscribed` the snapshot will cover it
    this.apply(entry, msg);
  }

  apply(entry, msg) {
    if (entry.offset !== null && typeof msg.offset === 'number' && msg.offset <= entry.offset) return;
    if (typeof msg.offset === 'number') entry.offset = msg.offset;
    call(entry.handlers.event, msg.event, msg.data ?? {}, msg);
  }

  onError(msg) {
    const entry = msg.channel ? this.channels.get(msg.channel) : null;
    if (msg.code === 'unauthenticated' && this.auth && session.token()) {
      // The token went stale while we were away: refresh once, then resubscribe.
      session.refresh().then((s) => {
        if (s) {
          this.send({ type: 'auth', token: s.token });
          if (entry) this.send(this.subscribeFrame(msg.channel, entry));
        } else if (this.onAuthError) {
          this.onAuthError(msg);
        }
      });
      return;
    }
    if (entry) {
      entry.ready = true;
      call(entry.handlers.error, msg.code, msg.message, msg);
      if ([...this.channels.values()].every((c) => c.ready)) this.connected();
    }
  }
}

function call(fn, ...args) {
  if (typeof fn !== 'function') return;
  try {
    fn(...args);
  } catch (err) {
    console.error('live handler failed', err);
  }
}

function defaultUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

/** The live indicator of the header: data-testid="live-status", data-state for tests. */
export function liveIndicator(live) {
  const el = document.createElement('span');
  el.className = 'live-status';
  el.dataset.testid = 'live-status';
  el.setAttribute('role', 'status');
  el.live = live; // tests reach the client here, e.g. to drop the socket: el.live.drop()
  const labels = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', offline: 'Offline' };
  let signedOut = false; // an app's session ended: its private numbers no longer update, whatever the socket
  const show = (state) => {
    el.dataset.reconnects = live.reconnects;
    el.dataset.resume = live.lastResume ?? ''; // how the last (re)subscription caught up: first | recovered | snapshot
    if (signedOut) {
      el.dataset.state = 'signed-out';
      el.textContent = 'Signed out';
      el.title = 'Log in again to see live updates';
      return;
    }
    el.dataset.state = state;
    el.textContent = labels[state] ?? state;
    el.title = state === 'live' ? 'Numbers update as they change' : 'Numbers may be out of date until the connection is back';
  };
  live.onState(show);
  session.onChange((s) => {
    if (!live.needsSession) return;
    signedOut = !s;
    if (s) live.drop(); // reconnect with the new token: every channel subscribed again
    show(live.state);
  });
  return el;
}
