// Tells the visitor when the page has lost the studio, and re-attaches when it is back.
// Every few seconds the page asks /studio/health; when that fails it shows a banner (the run goes on if the studio
// is still up). When the studio answers again, a studio that restarted (a new start time) gets a reloaded page:
// the old page's connection belongs to the old server, and a reload re-attaches to the job from the browser's storage.
(() => {
  const EVERY_MS = 3000, TIMEOUT_MS = 4000, MISSES_BEFORE_BANNER = 2;
  let misses = 0, upSince = null;
  const banner = () => {
    let el = document.getElementById("st-lost");
    if (!el) {
      el = document.createElement("div");
      el.id = "st-lost";
      el.className = "st-lost";
      el.setAttribute("role", "status");
      el.textContent = "Lost contact with the studio; your run continues if the studio is still up; retrying…";
      document.body.appendChild(el);
    }
    return el;
  };
  const check = async () => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    try {
      const answer = await fetch("studio/health", {cache: "no-store", signal: controller.signal});
      if (!answer.ok) throw new Error(String(answer.status));
      const health = await answer.json();
      if (upSince !== null && health.up_since !== upSince) {
        window.location.reload();  // the studio restarted: a fresh page re-attaches to the job
        return;
      }
      upSince = health.up_since;
      if (misses >= MISSES_BEFORE_BANNER) banner().hidden = true;
      misses = 0;
    } catch (error) {
      misses += 1;
      if (misses >= MISSES_BEFORE_BANNER) banner().hidden = false;
    } finally {
      clearTimeout(timer);
    }
  };
  setInterval(check, EVERY_MS);
  window.addEventListener("load", check);
})();
