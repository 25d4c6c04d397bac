// The editor page's history panel: the document's named versions, saving the revision it is at
// under a name, viewing a version's text, and restoring it (which everyone sees as an ordinary
// change, so nothing later is lost).
//
// Saving and restoring go over the client's WebSocket; the list and a version's text come from
// the history API (/api/docs/{doc}/...), with the page's token when the server has a secret.

/**
 * @typedef {{label: string, revision: number, created_at: string}} Version
 */

/**
 * Sets up the panel.
 * @param {{client: import('/js/tandem.js').TandemClient, doc: string, token: string | undefined}} options
 */
export function historyPanel({ client, doc, token }) {
  /** @param {string} selector @returns {any} */
  const $ = (selector) => document.querySelector(selector);
  const panel = $('[data-tandem="history"]');
  const toggle = $('.history');
  const list = $('[data-tandem="versions"]');
  const note = $('.history-note');
  const form = /** @type {HTMLFormElement} */ ($('.save-version'));
  const labelInput = /** @type {HTMLInputElement} */ ($('[data-tandem="version-label"]'));
  const view = $('.version-view');
  const base = `/api/docs/${encodeURIComponent(doc)}`;
  /** @type {Version | null} */
  let viewing = null;

  /** @param {string} path */
  const get = async (path) => {
    const response = await fetch(`${base}${path}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      cache: 'no-store',
    });
    const body = await response.json();
    if (!response.ok) throw Object.assign(new Error(body.message), { code: body.code });
    return body;
  };

  /** @param {string} text */
  const say = (text) => {
    note.textContent = text;
  };

  /** @param {string} time */
  const when = (time) => {
    const date = new Date(time);
    return Number.isNaN(date.getTime()) ? time : date.toLocaleString();
  };

  const refresh = async () => {
    try {
      const { versions } = /** @type {{versions: Version[]}} */ (await get('/versions'));
      list.replaceChildren(
        ...versions
          .slice()
          .reverse()
          .map((version) => {
            const item = document.createElement('li');
            const open = document.createElement('button');
            open.type = 'button';
            open.className = 'version';
            open.dataset.label = version.label;
            const name = document.createElement('strong');
            name.textContent = version.label;
            const meta = document.createElement('small');
            meta.textContent = `revision ${version.revision} · ${when(version.created_at)}`;
            open.append(name, meta);
            open.addEventListener('click', () => show(version));
            item.append(open);
            return item;
          }),
      );
      if (versions.length === 0) say('No versions yet: name the text as it is now to keep it.');
      else if (!note.dataset.keep) say('');
    } catch (error) {
      say(`The versions could not be read: ${/** @type {Error} */ (error).message}`);
    }
  };

  /** @param {Version} version */
  const show = async (version) => {
    viewing = version;
    $('.version-view-label').textContent = version.label;
    $('.version-view-meta').textContent = `revision ${version.revision} · ${when(version.created_at)}`;
    $('[data-tandem="version-text"]').textContent = 'Loading…';
    view.hidden = false;
    try {
      const { text } = await get(`/text?revision=${version.revision}`);
      if (viewing === version) $('[data-tandem="version-text"]').textContent = text;
    } catch (error) {
      $('[data-tandem="version-text"]').textContent = `The text could not be read: ${/** @type {Error} */ (error).message}`;
    }
  };

  toggle.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    toggle.setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) refresh();
  });

  form.addEventListener('submit', async (/** @type {SubmitEvent} */ event) => {
    event.preventDefault();
    const label = labelInput.value.trim();
    if (!label) return;
    try {
      const saved = await client.saveVersion(label);
      labelInput.value = '';
      say(`Saved “${saved.label}” at revision ${saved.revision}.`);
    } catch (error) {
      const code = /** @type {any} */ (error).code;
      say(code === 'conflict' ? `There is already a version named “${label}”.` : `Not saved: ${/** @type {Error} */ (error).message}`);
    }
    note.dataset.keep = '1';
    await refresh();
    delete note.dataset.keep;
  });

  $('[data-tandem="restore"]').addEventListener('click', async () => {
    if (!viewing) return;
    const version = viewing;
    try {
      const revision = await client.restoreVersion(version.label);
      say(`Restored “${version.label}” as revision ${revision}; the text before it stays in the history.`);
      view.hidden = true;
      viewing = null;
    } catch (error) {
      say(`Not restored: ${/** @type {Error} */ (error).message}`);
    }
  });

  $('.close-view').addEventListener('click', () => {
    view.hidden = true;
    viewing = null;
  });
}
