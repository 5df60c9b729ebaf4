// The owner's consent page: decide, upload each file with its progress (resumable), say it is done.
// From a file, as the page's CSP forbids inline script.
(() => {
  const base = location.pathname.replace(/\/$/, "");
  const show = (id, on) => { document.getElementById(id).hidden = !on; };
  const errorText = async (r) => { try { return (await r.json()).error.message; } catch { return "Something went wrong (" + r.status + "). Try again."; } };

  async function decide(decision) {
    document.getElementById("consent").disabled = document.getElementById("decline").disabled = true;
    const r = await fetch(base + "/decision", {method: "POST", headers: {"Content-Type": "application/json"},
                                                body: JSON.stringify({decision})});
    if (!r.ok) {
      document.getElementById("decide-error").textContent = await errorText(r);
      document.getElementById("consent").disabled = document.getElementById("decline").disabled = false;
      return;
    }
    show("decide", false);
    if (decision === "consent") { show("upload", true); document.getElementById("files").focus(); listInterrupted(); }
    else show("end-declined", true);
  }
  document.getElementById("consent").addEventListener("click", () => decide("consent"));
  // Declining is final: ask once more before sending it.
  document.getElementById("decline").addEventListener("click", () => {
    show("decide", false); show("confirm-decline", true); document.getElementById("decline-yes").focus();
  });
  document.getElementById("decline-back").addEventListener("click", () => {
    show("confirm-decline", false); show("decide", true); document.getElementById("decline").focus();
  });
  document.getElementById("decline-yes").addEventListener("click", () => {
    show("confirm-decline", false); show("decide", true); decide("decline");
  });

  let active = 0, sent = 0;
  const done = document.getElementById("done");
  const refresh = () => { done.disabled = active > 0 || sent === 0; };

  function fileRow(name) {
    const row = document.createElement("div");
    row.className = "file";
    row.innerHTML = '<div class="name"></div><progress max="100" value="0"></progress><div class="state muted">Waiting…</div>';
    row.querySelector(".name").textContent = name;
    const bar = row.querySelector("progress"), state = row.querySelector(".state");
    bar.setAttribute("aria-label", "Upload progress of " + name);
    document.getElementById("file-list").appendChild(row);
    return {row, bar, state};
  }
  const received = (ui, sha256) => {
    ui.bar.value = 100; sent++;
    ui.state.className = "state status-ok";
    ui.state.textContent = "Received. Fingerprint " + sha256.slice(0, 16) + "…";
  };
  const failed = (ui, msg) => { ui.state.className = "state status-bad"; ui.state.textContent = msg; };
  const pct = (done, total) => Math.floor(100 * done / total);

  // Resumable uploads (tus 1.0 with tus-js-client, /static/vendor/tus): a dropped connection is
  // retried from the last byte the server holds; after a reload, choosing the same file again
  // continues where it stopped (the upload's address is kept in this browser's localStorage).
  const endpoint = base + "/uploads";
  const pending = {};  // file name -> its row, for uploads interrupted before a reload
  async function listInterrupted() {
    if (!window.tus || !tus.canStoreURLs) return;
    const stored = await tus.defaultOptions.urlStorage.findAllUploads();
    for (const u of stored) {
      if (!u.uploadUrl || !u.uploadUrl.startsWith(endpoint + "/") || !u.metadata || pending[u.metadata.filename]) continue;
      const r = await fetch(u.uploadUrl, {method: "HEAD", headers: {"Tus-Resumable": "1.0.0"}});
      if (!r.ok) { tus.defaultOptions.urlStorage.removeUpload(u.urlStorageKey); continue; }
      const ui = fileRow(u.metadata.filename);
      const done = Number(r.headers.get("Upload-Offset")), total = Number(r.headers.get("Upload-Length"));
      ui.bar.value = pct(done, total);
      ui.state.textContent = ui.bar.value + "% sent before the page was closed. Choose this file again to continue.";
      pending[u.metadata.filename] = ui;
    }
  }

  function resumable(file) {
    const ui = pending[file.name] || fileRow(file.name);
    delete pending[file.name];
    active++; refresh();
    const finish = () => { active--; refresh(); };
    const upload = new tus.Upload(file, {
      endpoint,
      chunkSize: 32 * 1024 * 1024,  // whole 16 MiB storage parts per request
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000],
      metadata: {filename: file.name, filetype: file.type || "application/octet-stream"},
      removeFingerprintOnSuccess: true,
      onProgress: (done, total) => { ui.bar.value = pct(done, total); ui.state.textContent = ui.bar.value + "% sent"; },
      onSuccess: ({lastResponse}) => { received(ui, lastResponse.getHeader("X-Content-SHA256") || ""); finish(); },
      onError: (err) => {
        let msg = "The connection broke; choose the file again to continue where it stopped.";
        const res = err.originalResponse;
        if (res && res.getStatus() >= 400) {
          try { msg = JSON.parse(res.getBody()).error.message; } catch { msg = "Upload failed (" + res.getStatus() + ")."; }
        }
        failed(ui, msg); finish();
      },
    });
    upload.findPreviousUploads().then((previous) => {
      if (previous.length) { upload.resumeFromPreviousUpload(previous[0]); ui.state.textContent = "Continuing where it stopped…"; }
      upload.start();
    });
  }

  // Without tus support (very old browsers): one streamed PUT per file.
  function streamed(file) {
    const ui = fileRow(file.name);
    active++; refresh();
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", base + "/files/" + encodeURIComponent(file.name));
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) { ui.bar.value = pct(e.loaded, e.total); ui.state.textContent = ui.bar.value + "% sent"; } };
    xhr.onload = () => {
      active--;
      if (xhr.status === 201) received(ui, JSON.parse(xhr.responseText).sha256);
      else {
        let msg = "Upload failed (" + xhr.status + ").";
        try { msg = JSON.parse(xhr.responseText).error.message; } catch {}
        failed(ui, msg);
      }
      refresh();
    };
    xhr.onerror = () => { active--; failed(ui, "The connection broke; choose the file again."); refresh(); };
    xhr.send(file);
  }
  const upload = (file) => (window.tus && tus.isSupported ? resumable(file) : streamed(file));
  if (!document.getElementById("upload").hidden) listInterrupted();
  document.getElementById("files").addEventListener("change", (e) => { for (const f of e.target.files) upload(f); e.target.value = ""; });
  done.addEventListener("click", async () => {
    done.disabled = true;
    const r = await fetch(base + "/complete", {method: "POST"});
    if (!r.ok) { document.getElementById("upload-error").textContent = await errorText(r); refresh(); return; }
    show("upload", false); show("end-consented", true);
  });
})();
