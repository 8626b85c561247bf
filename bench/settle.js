// Added to every page the browser benchmarks open (Playwright's add_init_script), before the page's own
// scripts: it times what a user sees, in the page's own clock (performance.now(): milliseconds since the
// navigation started), so no round trip to the driving process is counted.
//
// A watch starts at the navigation, or at the next pointer or key input after watch() is called (the click
// that asks for a page), and ends when the page has settled: every script run started since the input has
// finished (Streamlit's running indicator is gone), no element of an older run is left (none is stale), the
// page's heading is drawn, every visible plotly chart has drawn its SVG or WebGL scene at least once and every
// visible image has loaded; then one more animation frame, so the frame showing it all has been painted. The
// watch goes on for a quiet second (not counted) in case another run or a redraw follows; a chart drawn in that
// second moves the settled time to two frames after that draw.
(() => {
  if (window.__losslens) return;
  const QUIET_MS = 1000;
  const log = {
    webglContexts: 0, // WebGL contexts created by this document
    plotsDrawn: 0, // plotly_afterplot events: one per chart drawn or redrawn
    lastPlotPainted: 0, // two animation frames after the last plotly_afterplot
    runsStarted: 0,
    runsEnded: 0,
    lastInput: null,
    watching: null,
  };
  window.__losslens = log;

  const getContext = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (type, ...rest) {
    const context = getContext.call(this, type, ...rest);
    if (context && /webgl/.test(type) && !this.__losslensWebgl) {
      this.__losslensWebgl = true;
      log.webglContexts += 1;
    }
    return context;
  };

  // plotly gives each chart's element its own emit(); a setter on the prototype sees it assigned and wraps it,
  // so every chart's first draw is seen (plotly 3 has no global hook for its events).
  Object.defineProperty(HTMLElement.prototype, "emit", {
    configurable: true,
    set(emit) {
      const chart = this;
      Object.defineProperty(chart, "emit", {
        configurable: true,
        writable: true,
        value(name, ...args) {
          if (name === "plotly_afterplot") {
            chart.__losslensDrawn = (chart.__losslensDrawn || 0) + 1;
            log.plotsDrawn += 1;
            requestAnimationFrame(() => requestAnimationFrame(() => (log.lastPlotPainted = performance.now())));
          }
          return emit.call(this, name, ...args);
        },
      });
    },
  });

  new MutationObserver((records) => {
    for (const record of records) {
      const state = record.target.getAttribute("data-test-script-state");
      if (state === record.oldValue) continue;
      if (state === "running") log.runsStarted += 1;
      else if (record.oldValue === "running") log.runsEnded += 1;
    }
  }).observe(document, {
    subtree: true,
    attributes: true,
    attributeFilter: ["data-test-script-state"],
    attributeOldValue: true,
  });

  for (const type of ["pointerdown", "keydown"]) {
    addEventListener(type, () => (log.lastInput = performance.now()), true);
  }

  const visible = (element) => element.getClientRects().length > 0;

  function page() {
    const app = document.querySelector("[data-testid='stApp']");
    const charts = [...document.querySelectorAll("[data-testid='stPlotlyChart']")].filter(visible);
    const plots = charts.map((chart) => chart.querySelector(".js-plotly-plot"));
    const stale = [...document.querySelectorAll("[data-stale='true']")];
    return {
      state: app ? app.getAttribute("data-test-script-state") : null,
      heading: !!document.querySelector("[data-testid='stMain'] h1"),
      charts: charts.length,
      drawn: plots.filter((plot) => plot && plot.__losslensDrawn).length,
      images: [...document.querySelectorAll("[data-testid='stMain'] img, [data-testid='stSidebar'] img")]
        .filter(visible)
        .every((image) => image.complete && image.naturalWidth > 0),
      stale: stale.length,
      staleCharts: stale.filter((element) => element.querySelector("[data-testid='stPlotlyChart']")).length,
      sidebar: (document.querySelector("[data-testid='stSidebar']") || {}).textContent || "",
    };
  }

  // Starts a watch; ``fromInput``: from the next input (else from the navigation); ``feedback``: a text whose
  // first appearance in the sidebar is timed (the sign that a choice there was taken).
  log.watch = (fromInput = true, feedback = null) => {
    const watch = {
      start: fromInput ? null : 0,
      runsBefore: log.runsStarted,
      plotsBefore: log.plotsDrawn,
      heading: null,
      firstChart: null, // the first chart drawn after the input
      feedback: null,
      feedbackText: feedback,
      greyed: null, // first frame with an element of the old run left on screen, faded
      mixedMs: 0, // time with charts of the old run and of the new one on screen together
      ready: null,
      readyPainted: null,
      settled: null,
      done: false,
      runs: 0,
      charts: 0,
      webglContexts: 0,
      liveWebglCanvases: 0,
      plotlyFrames: 0,
      plotsDrawn: 0,
    };
    log.watching = watch;
    const inputBefore = log.lastInput;
    let previous = null;
    let quietFrom = null;
    const tick = (now) => {
      if (log.watching !== watch) return;
      if (watch.start === null && log.lastInput !== inputBefore) watch.start = log.lastInput;
      if (watch.start === null) return requestAnimationFrame(tick);
      const seen = page();
      if (watch.heading === null && seen.heading) watch.heading = now;
      if (watch.firstChart === null && log.plotsDrawn > watch.plotsBefore) watch.firstChart = now;
      if (feedback && watch.feedback === null && seen.sidebar.includes(feedback)) watch.feedback = now;
      if (watch.greyed === null && seen.stale > 0) watch.greyed = now;
      if (previous !== null && seen.staleCharts > 0 && seen.drawn > seen.staleCharts) watch.mixedMs += now - previous;
      previous = now;
      const ready =
        log.runsStarted > watch.runsBefore &&
        log.runsEnded >= log.runsStarted &&
        seen.state === "notRunning" &&
        seen.stale === 0 &&
        seen.heading &&
        seen.drawn === seen.charts &&
        seen.images &&
        (!feedback || watch.feedback !== null);
      if (!ready) {
        watch.ready = watch.readyPainted = quietFrom = null;
      } else if (watch.ready === null) {
        watch.ready = now;
        quietFrom = now;
      } else if (watch.readyPainted === null) {
        watch.readyPainted = now; // the next frame: the one holding the settled page has been painted
      }
      if (watch.readyPainted !== null && now - quietFrom >= QUIET_MS) {
        const lastDraw = log.plotsDrawn > watch.plotsBefore ? log.lastPlotPainted : 0;
        watch.settled = Math.max(watch.readyPainted, lastDraw);
        watch.runs = log.runsStarted - watch.runsBefore;
        watch.plotsDrawn = log.plotsDrawn - watch.plotsBefore;
        watch.charts = seen.charts;
        watch.webglContexts = log.webglContexts;
        watch.liveWebglCanvases = [...document.querySelectorAll("canvas")].filter((c) => c.__losslensWebgl).length;
        watch.plotlyFrames = [...document.querySelectorAll(".js-plotly-plot")].map(
          (plot) => ((plot._transitionData || {})._frames || []).length,
        );
        watch.done = true;
        return;
      }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    return true;
  };
  log.watch(false);
})();
