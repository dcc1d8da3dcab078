// picamrtc web client: the camera's control channel and push-to-talk.
//
// ControlPanel: the data channel "control" of a session (created by
// whep.js before the offer when the camera's status says control:true and
// the page has a control token, ?control=T). On-screen buttons and the
// arrow keys send {"cmd":"forward"|"back"|"left"|"right"|"stop"}; every
// text that arrives is kept and the last one is shown as telemetry.
//
// PushToTalk: a hold-to-talk button for a camera whose status says
// talkback:true. The first press asks for the microphone; then the page
// starts a new session whose audio m-line is sendrecv with the
// microphone's track, enabled only while the button is held. When the
// camera answers that m-line sendonly (another viewer talks), the button
// says so; the next press tries again.

/** The commands the panel sends, by key. */
export const KEY_COMMANDS = {
  ArrowUp: 'forward',
  ArrowDown: 'back',
  ArrowLeft: 'left',
  ArrowRight: 'right',
  ' ': 'stop',
};

const KEEP = 500;          // received/sent texts kept (the oldest dropped)
const KEY_REPEAT_MS = 100; // a held arrow key sends at most this often

function keep(list, item) {
  list.push(item);
  if (list.length > KEEP) list.splice(0, list.length - KEEP);
}

export class ControlPanel {
  /** @param {HTMLElement} root the panel (#control-panel) */
  constructor(root) {
    this.root = root;
    /** @type {RTCDataChannel|null} */
    this.channel = null;
    /** every text received on a control channel of this page, oldest first */
    this.received = [];
    /** every text this page sent, oldest first */
    this.sent = [];
    this._stateEl = root.querySelector('[data-control="state"]');
    this._telemetryEl = root.querySelector('[data-control="telemetry"]');
    this._countEl = root.querySelector('[data-control="count"]');
    this._lastKey = { key: '', at: 0 };
    this._listeners = null;
    for (const b of root.querySelectorAll('[data-cmd]')) {
      b.addEventListener('click', () => this.command(b.dataset.cmd));
    }
    this.render();
  }

  get shown() { return !this.root.hidden; }
  set shown(on) {
    if (this.root.hidden === !on) return;
    this.root.hidden = !on;
    this.render();
  }

  /** 'connecting' | 'open' | 'closing' | 'closed', null without a channel */
  get state() { return this.channel ? this.channel.readyState : null; }

  /** the last text received, null before any */
  get telemetry() { return this.received.length ? this.received[this.received.length - 1] : null; }

  /** Use the channel of a new session (null: none). */
  attach(channel) {
    if (this.channel && this._listeners) {
      for (const [type, fn] of this._listeners) this.channel.removeEventListener(type, fn);
    }
    this.channel = channel || null;
    this._listeners = null;
    if (this.channel) {
      try { this.channel.binaryType = 'arraybuffer'; } catch { /* read-only somewhere */ }
      const onMessage = (e) => {
        let text = e.data;
        if (typeof text !== 'string') {
          try { text = new TextDecoder().decode(text); } catch { text = String(text); }
        }
        keep(this.received, text);
        this.render();
      };
      const onState = () => this.render();
      this._listeners = [['message', onMessage], ['open', onState], ['close', onState], ['error', onState]];
      for (const [type, fn] of this._listeners) this.channel.addEventListener(type, fn);
    }
    this.render();
  }

  /** Send a text; false when there is no open channel. */
  send(text) {
    const ch = this.channel;
    if (!ch || ch.readyState !== 'open') return false;
    const s = String(text);
    try {
      ch.send(s);
    } catch (e) {
      console.warn('picamrtc: control send failed:', e.message);
      return false;
    }
    keep(this.sent, s);
    this.render();
    return true;
  }

  /** Send {"cmd": cmd}. */
  command(cmd) {
    const ok = this.send(JSON.stringify({ cmd }));
    const b = this.root.querySelector(`[data-cmd="${cmd}"]`);
    if (b && ok) {
      b.classList.add('sent');
      setTimeout(() => b.classList.remove('sent'), 150);
    }
    if (!ok) this.render();
    return ok;
  }

  /** A keydown for the panel: true when it was one of its keys. */
  onKey(e) {
    if (!this.shown) return false;
    const cmd = KEY_COMMANDS[e.key];
    if (!cmd) return false;
    e.preventDefault();
    const now = performance.now();
    if (e.repeat && this._lastKey.key === e.key && now - this._lastKey.at < KEY_REPEAT_MS) return true;
    this._lastKey = { key: e.key, at: now };
    this.command(cmd);
    return true;
  }

  render() {
    const st = this.state;
    const words = {
      connecting: 'Connecting…', open: 'Connected', closing: 'Closing…', closed: 'Not connected',
    }[st] || 'Not connected';
    if (this._stateEl) {
      this._stateEl.textContent = words;
      this._stateEl.dataset.state = st || 'none';
    }
    for (const b of this.root.querySelectorAll('[data-cmd]')) b.disabled = st !== 'open';
    if (this._telemetryEl) {
      const t = this.telemetry;
      let shown = '—';
      if (t != null) {
        shown = t;
        try {
          const v = JSON.parse(t);
          if (v && typeof v === 'object') shown = JSON.stringify(v, null, 1).replace(/\n\s*/g, ' ');
        } catch { /* plain text */ }
      }
      if (this._telemetryEl.textContent !== shown) this._telemetryEl.textContent = shown;
    }
    if (this._countEl) {
      const c = `${this.sent.length} sent · ${this.received.length} received`;
      if (this._countEl.textContent !== c) this._countEl.textContent = c;
    }
  }
}

const TALK_WORDS = {
  off: 'Hold to talk',
  asking: 'Allow the microphone…',
  denied: 'Microphone blocked',
  unsupported: 'No microphone here',
  starting: 'Connecting to talk…',
  ready: 'Hold to talk',
  talking: 'Talking…',
  busy: 'Someone else is talking',
};

export class PushToTalk {
  /**
   * @param {HTMLButtonElement} button
   * @param {{restart: function(): void}} o restart: start a new session
   *        (it asks micTrackFor() whether to offer the microphone)
   */
  constructor(button, { restart }) {
    this.button = button;
    this.restart = restart;
    /** 'off' | 'asking' | 'denied' | 'unsupported' | 'starting' | 'ready' |
     * 'talking' | 'busy' */
    this.state = 'off';
    /** the button is held */
    this.pressed = false;
    /** the microphone's track, once allowed */
    this.track = null;
    /** the next session offers the microphone */
    this.wanted = false;
    this.error = '';
    this._label = button.querySelector('.btn-label') || button;

    button.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      try { button.setPointerCapture(e.pointerId); } catch { /* fine */ }
      e.preventDefault();
      this.press();
    });
    for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) {
      button.addEventListener(type, () => this.release());
    }
    button.addEventListener('keydown', (e) => {
      if (e.key !== ' ' && e.key !== 'Enter') return;
      e.preventDefault();
      e.stopPropagation();
      if (!e.repeat) this.press();
    });
    button.addEventListener('keyup', (e) => {
      if (e.key !== ' ' && e.key !== 'Enter') return;
      e.preventDefault();
      this.release();
    });
    button.addEventListener('contextmenu', (e) => e.preventDefault());
    window.addEventListener('blur', () => this.release());
    this.render();
  }

  get shown() { return !this.button.hidden; }
  set shown(on) {
    if (this.button.hidden === !on) return;
    this.button.hidden = !on;
    if (!on) this.release();
  }

  /** The track the next session should offer sendrecv, else null. */
  micTrackFor(talkback) {
    if (!talkback) this.wanted = false;
    if (this.wanted && this.track && this.track.readyState === 'live') {
      this.track.enabled = false; // until the answer says this viewer talks
      this._set('starting');
      return this.track;
    }
    this.wanted = false;
    if (['starting', 'ready', 'talking', 'busy'].includes(this.state)) this._set('off');
    return null;
  }

  async press() {
    if (this.pressed) return;
    this.pressed = true;
    if (this.state === 'ready' || this.state === 'talking') {
      this._enable(true);
      this._set('talking');
      return;
    }
    if (this.state === 'asking' || this.state === 'starting') {
      this.render();
      return;
    }
    // off, denied, unsupported, busy: (again) a talking session
    if (!this.track || this.track.readyState !== 'live') {
      const md = navigator.mediaDevices;
      if (!md || typeof md.getUserMedia !== 'function') {
        this.error = 'this page has no microphone access (it needs https or localhost)';
        this._set('unsupported');
        return;
      }
      this._set('asking');
      let stream;
      try {
        stream = await md.getUserMedia({
          audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
          video: false,
        });
      } catch (e) {
        this.error = e && e.message ? e.message : String(e);
        this._set('denied');
        return;
      }
      const track = stream.getAudioTracks()[0];
      if (!track) {
        this.error = 'no audio track';
        this._set('denied');
        return;
      }
      track.enabled = false;
      this.track = track;
      this.error = '';
    }
    this.wanted = true;
    this._set('starting');
    this.restart();
  }

  release() {
    if (!this.pressed) return;
    this.pressed = false;
    this._enable(false);
    if (this.state === 'talking') this._set('ready');
    else this.render();
  }

  /** After a session's answer: it may talk, or someone else does. */
  sessionStarted(client) {
    if (!client.talk) {
      if (this.state === 'starting') this._set(this.wanted ? 'starting' : 'off');
      return;
    }
    if (client.canTalk) {
      this._enable(this.pressed);
      this._set(this.pressed ? 'talking' : 'ready');
    } else {
      this._enable(false);
      this.wanted = false; // reconnects offer recvonly; a press tries again
      this._set('busy');
    }
  }

  /** The session is over (a new one may follow): the microphone is off
   * until the next one's answer. */
  sessionDropped() {
    this._enable(false);
    if (this.state === 'ready' || this.state === 'talking') this._set('off');
  }

  /** Microphone off and released; no more talking sessions. */
  reset() {
    this.pressed = false;
    this.wanted = false;
    if (this.track) {
      try { this.track.stop(); } catch { /* ended */ }
    }
    this.track = null;
    this._set('off');
  }

  _enable(on) {
    if (this.track) this.track.enabled = Boolean(on);
  }

  _set(state) {
    this.state = state;
    this.render();
  }

  render() {
    const words = TALK_WORDS[this.state] || TALK_WORDS.off;
    if (this._label.textContent !== words) this._label.textContent = words;
    this.button.dataset.talk = this.state;
    this.button.setAttribute('aria-pressed', String(this.state === 'talking'));
    let title = 'Hold to talk through the camera\'s speaker (T)';
    if (this.state === 'busy') title = 'Another viewer is talking; press again to try';
    else if (this.error && (this.state === 'denied' || this.state === 'unsupported')) title = `No microphone: ${this.error}`;
    this.button.title = title;
  }
}
