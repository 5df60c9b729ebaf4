// custody console: live request status and the maps. Plain JS, no build step; Leaflet is vendored.
(function () {
  "use strict";

  function config() {
    var el = document.getElementById("map-config");
    return el ? JSON.parse(el.textContent) : { tiles: "", attribution: "", center: [38.9072, -77.0369] };
  }

  // Great-circle distance in metres: the same haversine formula the server filters with.
  function distance(lat1, lon1, lat2, lon2) {
    var r = Math.PI / 180, R = 6371008.8;
    var dp = (lat2 - lat1) * r / 2, dl = (lon2 - lon1) * r / 2;
    var a = Math.sin(dp) * Math.sin(dp) + Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.sin(dl) * Math.sin(dl);
    return 2 * R * Math.asin(Math.sqrt(a));
  }

  function makeMap(el, center, zoom) {
    var cfg = config();
    var map = L.map(el, { keyboard: true }).setView(center, zoom);
    if (cfg.tiles) {
      L.tileLayer(cfg.tiles, { maxZoom: 19, attribution: cfg.attribution || "" }).addTo(map);
    } else {
      el.classList.add("no-tiles");
      map.attributionControl.setPrefix(false);
      map.attributionControl.addAttribution("no map tiles (CUSTODY_MAP_TILE_URL)");
    }
    L.control.scale({ imperial: false, position: "topright" }).addTo(map);
    return map;
  }

  // Labels come from camera owners: always text, never HTML (Leaflet renders strings as HTML).
  function text(value) { var span = document.createElement("span"); span.textContent = value; return span; }

  function num(id) { var v = parseFloat(document.getElementById(id).value); return isNaN(v) ? null : v; }

  // --- the alert form's map: which cameras the radius will ask -------------------------------------
  function alertMap() {
    var el = document.getElementById("alert-map");
    if (!el || typeof L === "undefined") return;
    var lat = num("lat"), lon = num("lon");
    var map = makeMap(el, [lat, lon], 16);
    var incident = L.circleMarker([lat, lon], { radius: 8, color: "#fff", weight: 2, fillColor: "#c2410c", fillOpacity: 1 }).addTo(map);
    var circle = L.circle([lat, lon], { radius: num("radius_m") || 0, color: "#c2410c", weight: 2, fillOpacity: 0.08 }).addTo(map);
    var cameras = [], markers = L.layerGroup().addTo(map), loadedAt = null;
    var preview = document.getElementById("alert-preview");

    function redraw() {
      var la = num("lat"), lo = num("lon"), rad = num("radius_m") || 0;
      if (la === null || lo === null) return;
      incident.setLatLng([la, lo]); circle.setLatLng([la, lo]); circle.setRadius(rad);
      markers.clearLayers();
      var asked = 0, pulled = 0;
      cameras.forEach(function (c) {
        var inside = distance(la, lo, c.lat, c.lon) <= rad;
        var color = !inside ? "#9aa5b1" : (c.kind === "integrated" ? "#1d8a46" : "#0b63b6");
        if (inside) { if (c.kind === "integrated") pulled++; else asked++; }
        L.circleMarker([c.lat, c.lon], { radius: 6, color: "#fff", weight: 1.5, fillColor: color, fillOpacity: 1 })
          .bindTooltip(text(c.label + (inside ? (c.kind === "integrated" ? " (pulled)" : " (asked)") : " (outside)")))
          .addTo(markers);
      });
      preview.textContent = loadedAt === null ? "Loading cameras…" :
        plural(asked, "registered camera") + " will be asked and " + plural(pulled, "integrated camera") +
        " pulled (" + plural(cameras.length, "camera") + " nearby).";
    }

    function load() {
      var la = num("lat"), lo = num("lon");
      if (la === null || lo === null) return;
      fetch(el.dataset.camerasUrl + "?lat=" + la + "&lon=" + lo, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (list) { cameras = list; loadedAt = [la, lo]; redraw(); })
        .catch(function () { preview.textContent = "Could not load the cameras; the alert still works."; });
    }

    map.on("click", function (e) {
      document.getElementById("lat").value = e.latlng.lat.toFixed(6);
      document.getElementById("lon").value = e.latlng.lng.toFixed(6);
      if (!loadedAt || distance(loadedAt[0], loadedAt[1], e.latlng.lat, e.latlng.lng) > 1000) load(); else redraw();
    });
    ["lat", "lon"].forEach(function (id) { document.getElementById(id).addEventListener("change", function () { load(); map.panTo([num("lat"), num("lon")]); }); });
    document.getElementById("radius_m").addEventListener("input", redraw);
    load();
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  // --- live status of a case's requests and evidence -------------------------------------------------
  function liveStatus() {
    var table = document.getElementById("request-table");
    if (!table) return;
    var note = document.getElementById("live-note");
    var known = {};
    table.querySelectorAll("tr[data-request]").forEach(function (tr) {
      known[tr.dataset.request] = tr.querySelector("[data-field=status]").textContent;
    });
    // Files, not rows: an attached file has a second row for its working copy's player.
    var evidenceCount = document.querySelectorAll("#evidence-table tbody tr[data-evidence]").length;

    function tick() {
      fetch(table.dataset.statusUrl, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (data) {
          var changed = [];
          data.requests.forEach(function (r) {
            var tr = table.querySelector('tr[data-request="' + r.id + '"]');
            if (!tr) return;
            var pill = tr.querySelector("[data-field=status]");
            if (known[r.id] !== r.status) {
              changed.push(tr.querySelector("a").textContent + ": " + r.status);
              known[r.id] = r.status;
              pill.textContent = r.status;
              pill.className = "pill " + r.status;
              tr.querySelector("[data-field=updated]").textContent = r.updated;  // the server's words, program zone
            }
          });
          if (changed.length) note.textContent = "Updated: " + changed.join("; ");
          if (data.evidence.length !== evidenceCount) {
            evidenceCount = data.evidence.length;
            note.textContent = "New evidence arrived; the list below is up to date (reload the page to play working copies).";
            renderEvidence(data.evidence);
          }
        })
        .catch(function () { note.textContent = "Live updates paused (connection lost); retrying…"; })
        .finally(function () { setTimeout(tick, 2500); });
    }
    setTimeout(tick, 2500);
  }

  function renderEvidence(list) {
    var tbody = document.querySelector("#evidence-table tbody");
    tbody.textContent = "";
    list.forEach(function (e) {
      var tr = document.createElement("tr"); tr.dataset.evidence = e.id;
      function cell(label, text, cls) {
        var td = document.createElement("td"); td.dataset.label = label; td.textContent = text;
        if (cls) td.className = cls; tr.appendChild(td); return td;
      }
      var file = cell("File", e.filename);
      file.appendChild(document.createElement("br"));
      var rec = document.createElement("span"); rec.className = "muted small"; rec.textContent = "received " + e.received; file.appendChild(rec);
      var from = cell("From", e.camera_label);
      from.appendChild(document.createElement("br"));
      var rq = document.createElement("a"); rq.className = "small"; rq.href = "/console/requests/" + e.request_id;
      rq.textContent = "request " + e.request_id.slice(0, 8); from.appendChild(rq);
      if (e.basis) {
        from.appendChild(document.createElement("br"));
        var bs = document.createElement("span"); bs.className = "muted small basis"; bs.textContent = e.basis; from.appendChild(bs);
      }
      cell("Size", e.size.toLocaleString("en-US") + " B", "nowrap");
      cell("SHA-256", e.sha256, "mono");
      var st = cell("Status", ""); var pill = document.createElement("span"); pill.className = "pill " + e.status; pill.textContent = e.status; st.appendChild(pill);
      var dl = cell("", "");
      if (e.status === "verified" || e.status === "attached") {
        var a = document.createElement("a"); a.className = "button small secondary"; a.href = "/console/evidence/" + e.id + "/download";
        a.textContent = "Download"; a.setAttribute("aria-label", "Download " + e.filename + " (the master)"); dl.appendChild(a);
        dl.appendChild(document.createElement("br"));
        var m = document.createElement("span"); m.className = "muted small"; m.textContent = "master (the owner's file, unchanged)"; dl.appendChild(m);
      }
      tbody.appendChild(tr);
    });
    var empty = document.getElementById("evidence-empty");
    if (empty) empty.hidden = list.length > 0;
  }

  // --- a resident's camera pin -------------------------------------------------------------------------
  function pinMap() {
    var el = document.getElementById("pin-map");
    if (!el || typeof L === "undefined") return;
    var cfg = config();
    var lat = num("cam-lat"), lon = num("cam-lon");
    var has = lat !== null && lon !== null;
    var map = makeMap(el, has ? [lat, lon] : cfg.center, has ? 17 : 13);
    var pin = has ? L.marker([lat, lon], { keyboard: false }).addTo(map) : null;
    var msg = document.getElementById("pin-note");
    function place(la, lo, how) {
      if (pin) pin.setLatLng([la, lo]); else pin = L.marker([la, lo], { keyboard: false }).addTo(map);
      msg.textContent = how + " " + la.toFixed(5) + ", " + lo.toFixed(5) + ".";
    }
    map.on("click", function (e) {
      document.getElementById("cam-lat").value = e.latlng.lat.toFixed(6);
      document.getElementById("cam-lon").value = e.latlng.lng.toFixed(6);
      place(e.latlng.lat, e.latlng.lng, "Pin placed at");
    });
    // Typed coordinates move the pin and the note with them.
    ["cam-lat", "cam-lon"].forEach(function (id) {
      document.getElementById(id).addEventListener("input", function () {
        var la = num("cam-lat"), lo = num("cam-lon");
        if (la === null || lo === null || Math.abs(la) > 90 || Math.abs(lo) > 180) return;
        place(la, lo, "Pin moved to the typed coordinates");
        map.panTo([la, lo]);
      });
    });
    var here = document.getElementById("use-location");
    if (here && navigator.geolocation) {
      here.hidden = false;
      here.addEventListener("click", function () {
        msg.textContent = "Finding your location…";
        navigator.geolocation.getCurrentPosition(function (p) {
          var la = p.coords.latitude, lo = p.coords.longitude;
          document.getElementById("cam-lat").value = la.toFixed(6);
          document.getElementById("cam-lon").value = lo.toFixed(6);
          place(la, lo, "Pin placed at your location (about " + Math.round(p.coords.accuracy) + " m accurate):");
          map.setView([la, lo], 18);
        }, function (err) {
          msg.textContent = err.code === 1
            ? "Your browser did not allow the location. Tap the map or type the coordinates instead."
            : "Your location could not be found. Tap the map or type the coordinates instead.";
        }, { enableHighAccuracy: true, timeout: 15000 });
      });
    }
  }

  function kindToggle() {
    var radios = document.querySelectorAll("input[name=kind]");
    var box = document.getElementById("pull-url-box");
    if (!radios.length || !box) return;
    function sync() {
      var v = document.querySelector("input[name=kind]:checked");
      box.hidden = !(v && v.value === "integrated");
    }
    radios.forEach(function (r) { r.addEventListener("change", sync); });
    sync();
  }

  document.addEventListener("DOMContentLoaded", function () { alertMap(); liveStatus(); pinMap(); kindToggle(); });
})();
