// picamrtc web client: the selected camera's recordings (docs/recording.md).
// Shown for a camera whose status says it can record ("recording" in it):
// a button that starts or stops recording (POST api/record/D), the
// segments (GET api/recordings/D) and a player for one of them (fetched
// whole with the page's token, then played from memory).

import { request, readError } from './whep.js';

const LIST_MS = 30000;            // the list again while shown

function formatBytes(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(n / 1e3))} kB`;
}

function formatStart(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export class RecordingsPanel {
  /** @param root the panel's element; @param api path -> URL;
   * @param headers () -> the request headers (the token) */
  constructor(root, api, headers) {
    this.root = root;
    this.api = api;
    this.headers = headers;
    this.list = root.querySelector('#recording-list');
    this.empty = root.querySelector('#recording-empty');
    this.button = root.querySelector('#rec-btn');
    this.player = root.querySelector('#recording-player');
    this.device = null;
    this.recording = false;
    this.segments = [];
    this.loadedAt = 0;
    this.playing = null;          // the object URL the player shows
    this.button.addEventListener('click', () => this.toggle());
    root.querySelector('#rec-refresh').addEventListener('click', () => this.load());
  }

  /** The selected camera and its status (every poll). */
  update(device, status) {
    const can = !!status && typeof status.recording === 'boolean';
    const changed = device !== this.device;
    this.root.hidden = !can;
    if (!can) return;
    this.recording = status.recording;
    this.renderButton(status.recordError);
    if (changed) {
      this.device = device;
      this.segments = [];
      this.render();
      this.load();
    } else if (Date.now() - this.loadedAt > LIST_MS) {
      this.load();
    }
  }

  renderButton(error) {
    this.button.textContent = this.recording ? 'Stop recording' : 'Start recording';
    this.button.setAttribute('aria-pressed', String(this.recording));
    this.empty.dataset.error = error || '';
  }

  async toggle() {
    if (!this.device) return;
    const action = this.recording ? 'stop' : 'start';
    this.button.disabled = true;
    try {
      const res = await request(this.api(`api/record/${encodeURIComponent(this.device)}`), {
        method: 'POST', headers: { ...this.headers(), 'Content-Type': 'application/json' },
        body: JSON.stringify({ action }), timeoutMs: 10000,
      });
      if (!res.ok) throw await readError(res);
      this.recording = (await res.json()).recording === true;
      this.renderButton();
      this.load();
    } catch (e) {
      this.empty.textContent = `Could not ${action} recording: ${e.message}`;
      this.empty.hidden = false;
    } finally {
      this.button.disabled = false;
    }
  }

  async load() {
    const device = this.device;
    this.loadedAt = Date.now();
    try {
      const res = await request(this.api(`api/recordings/${encodeURIComponent(device)}`),
        { headers: this.headers(), timeoutMs: 10000 });
      if (!res.ok) throw await readError(res);
      const body = await res.json();
      if (device !== this.device) return;
      this.segments = Array.isArray(body.segments) ? body.segments : [];
      this.recording = body.recording === true;
      this.renderButton();
      this.render();
    } catch (e) {
      if (device !== this.device) return;
      this.empty.textContent = `Recordings unavailable: ${e.message}`;
      this.empty.hidden = false;
    }
  }

  render() {
    this.list.replaceChildren();
    for (const s of this.segments.slice().reverse()) {
      if (typeof s.name !== 'string') continue;
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'recording';
      b.dataset.name = s.name;
      b.textContent = `${formatStart(s.start)} · ${Math.round((s.durationMs || 0) / 1000)} s · ${formatBytes(s.bytes || 0)}`;
      b.addEventListener('click', () => this.play(s.name));
      li.append(b);
      this.list.append(li);
    }
    const n = this.list.children.length;
    this.empty.textContent = n ? '' : 'No recordings yet.';
    this.empty.hidden = !!n;
  }

  /** Fetches segment @name whole and plays it in the panel's player. */
  async play(name) {
    try {
      const res = await request(this.api(`api/recordings/${encodeURIComponent(this.device)}/${encodeURIComponent(name)}`),
        { headers: this.headers(), timeoutMs: 60000 });
      if (!res.ok) throw await readError(res);
      const blob = await res.blob();
      if (this.playing) URL.revokeObjectURL(this.playing);
      this.playing = URL.createObjectURL(new Blob([blob], { type: 'video/mp4' }));
      this.player.src = this.playing;
      this.player.dataset.name = name;
      this.player.hidden = false;
      this.player.muted = true;
      await this.player.play().catch(() => {});
    } catch (e) {
      this.empty.textContent = `Could not play ${name}: ${e.message}`;
      this.empty.hidden = false;
    }
  }
}
