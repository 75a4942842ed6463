(() => {
  const data = JSON.parse(document.getElementById("result").textContent);
  if (window.opener && data.origin) {
    try { window.opener.postMessage(data.message, data.origin); } catch (e) { /* the opener went away */ }
  }
  const back = sessionStorage.getItem("broker.connect.session");
  if (back) {
    const link = document.querySelector("#continue a");
    link.href = data.base + "/connect?session=" + encodeURIComponent(back);
    document.getElementById("continue").hidden = false;
  }
  setTimeout(() => window.close(), 400);
})();
