// Draws each widget's chart (uPlot) from the series in its data-chart attribute,
// whenever htmx puts a widget in the page (first load and every live refresh).
(function () {
  "use strict";
  var palette = ["#1f5fbf", "#c0392b", "#1b7f3b", "#8e44ad", "#d68910", "#117a8b"];
  function draw(el) {
    if (typeof uPlot === "undefined" || el.dataset.drawn) return;
    var spec;
    try { spec = JSON.parse(el.dataset.chart); } catch (e) { return; }
    if (!spec.x || spec.x.length === 0) return;
    el.dataset.drawn = "1";
    var width = Math.max(260, el.clientWidth || 300);
    var series = [{}].concat(spec.series.map(function (s, i) {
      return { label: s.label, stroke: palette[i % palette.length], width: 2 };
    }));
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    // One period alone would stretch the time axis over years: show a month around it.
    var scales = {};
    if (spec.x.length === 1) {
      var t = spec.x[0];
      scales.x = { range: function () { return [t - 15 * 86400, t + 15 * 86400]; } };
    }
    el.plot = new uPlot({ width: width, height: 220, series: series, scales: scales, axes: [{}, { size: 70 }] }, data, el);
  }
  // A turned phone or a resized window: charts follow their widget's width.
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      document.querySelectorAll(".chart[data-chart]").forEach(function (el) {
        if (!el.plot) return;
        // The chart itself is in the box: measure it at its smallest first.
        el.plot.setSize({ width: 260, height: 220 });
        el.plot.setSize({ width: Math.max(260, el.clientWidth || 300), height: 220 });
      });
    }, 150);
  });
  // htmx hands over each new element itself, which may be the chart.
  function drawAll(root) {
    if (root.matches && root.matches(".chart[data-chart]")) draw(root);
    root.querySelectorAll(".chart[data-chart]").forEach(draw);
  }
  document.addEventListener("DOMContentLoaded", function () {
    drawAll(document);
    if (window.htmx) { htmx.onLoad(function (el) { drawAll(el); }); }
  });
})();

// The live connection's state, said beside the widgets: a tab past the user's
// cap of open change streams (or one that lost the platform) is told so, keeps
// retrying (htmx's SSE extension backs off by itself), and once connected again
// reloads every figure, so changes made meanwhile are not missed.
(function () {
  "use strict";
  var LIVE = "Live: figures refresh by themselves when records change.";
  var PAUSED = "Live updates paused: this tab could not open its live connection " +
    "(too many dashboards open for your account, or the platform restarting). " +
    "It keeps trying; closing another dashboard tab frees a place.";
  var failed = false;
  function status(text, paused) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("paused", paused);
  }
  document.addEventListener("htmx:sseError", function () {
    failed = true;
    status(PAUSED, true);
  });
  // A change redraws every widget; the status (a polite live region) says it
  // once, with the time, instead of each widget being read out again.
  document.addEventListener("htmx:sseMessage", function () {
    if (failed) return;
    var at = new Date().toLocaleTimeString();
    status(LIVE.replace(/\.$/, "") + "; the last change came at " + at + ".", false);
  });
  document.addEventListener("htmx:sseOpen", function () {
    status(LIVE, false);
    if (!failed) return;
    failed = false;
    document.querySelectorAll(".figures[hx-get]").forEach(function (el) {
      htmx.trigger(el, "sse:change");
    });
  });
})();
