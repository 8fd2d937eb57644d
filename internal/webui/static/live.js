// Keeps the page live: every 1.5 s it fetches the live part of the page
// (server-rendered and escaped HTML) and puts it in place. No framework.
(function () {
  "use strict";
  var period = 1500;
  var live = document.getElementById("live");
  var status = document.getElementById("status");

  function show(text, ok) {
    status.textContent = text;
    status.className = ok ? "ok" : "bad";
  }

  function refresh() {
    fetch("live", { cache: "no-store", credentials: "same-origin" })
      .then(function (res) {
        return res.text().then(function (body) {
          // 503 carries a page that says why (a worker, no swarm).
          if (res.ok || res.status === 503) {
            live.innerHTML = body;
            show("live", true);
          } else {
            show("refresh failed: HTTP " + res.status + "; retrying", false);
          }
        });
      })
      .catch(function (err) {
        show("cannot reach this manager (" + err.message + "); retrying", false);
      })
      .then(function () {
        setTimeout(refresh, period);
      });
  }

  setTimeout(refresh, period);
})();
