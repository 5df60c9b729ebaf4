// The owner's consent page: decide, upload each file with its progress, say it is done.
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
    if (decision === "consent") { show("upload", true); document.getElementById("files").focus(); }
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

  function upload(file) {
    const row = document.createElement("div");
    row.className = "file";
    row.innerHTML = '<div class="name"></div><progress max="100" value="0"></progress><div class="state muted">Waiting…</div>';
    row.querySelector(".name").textContent = file.name;
    const bar = row.querySelector("progress"), state = row.querySelector(".state");
    bar.setAttribute("aria-label", "Upload progress of " + file.name);
    document.getElementById("file-list").appendChild(row);
    active++; refresh();
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", base + "/files/" + encodeURIComponent(file.name));
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); state.textContent = bar.value + "% sent"; } };
    xhr.onload = () => {
      active--;
      if (xhr.status === 201) {
        const body = JSON.parse(xhr.responseText);
        bar.value = 100; sent++;
        state.className = "state status-ok";
        state.textContent = "Received. Fingerprint " + body.sha256.slice(0, 16) + "…";
      } else {
        let msg = "Upload failed (" + xhr.status + ").";
        try { msg = JSON.parse(xhr.responseText).error.message; } catch {}
        state.className = "state status-bad"; state.textContent = msg;
      }
      refresh();
    };
    xhr.onerror = () => { active--; state.className = "state status-bad"; state.textContent = "The connection broke; choose the file again."; refresh(); };
    xhr.send(file);
  }
  document.getElementById("files").addEventListener("change", (e) => { for (const f of e.target.files) upload(f); e.target.value = ""; });
  done.addEventListener("click", async () => {
    done.disabled = true;
    const r = await fetch(base + "/complete", {method: "POST"});
    if (!r.ok) { document.getElementById("upload-error").textContent = await errorText(r); refresh(); return; }
    show("upload", false); show("end-consented", true);
  });
})();
