/* Lesson 03's clip explorer, computed in the browser: no kernel, no library, no request.
 *
 * The same picture as the notebook's ClipExplorer (src/ppo_course/widgets/clip_explorer.py): sliders for
 * r, eps and A; L^CLIP against r for +|A| (left) and -|A| (right), the unclipped line r*A, the clip interval
 * [1 - eps, 1 + eps] shaded, and the region where dL/dr = 0 hatched. Colours are ppo_course.plotting.COLORS.
 * Every <div class="clip-explorer" data-r data-eps data-adv> on a page becomes one explorer.
 *
 * window.ppoClipExplorer exposes the maths (tests compare it with ppo_course.clipping.clipped_surrogate)
 * and the explorers on the page. Moving r moves two dots; eps and A redraw the curves (1002 points).
 */
(function () {
  "use strict";

  var R_MAX = 2.5, A_MAX = 2.0, GRID_POINTS = 501;
  var Y_MAX = A_MAX * R_MAX * 1.05;
  var COLORS = {
    positive: "#1f77b4", negative: "#d62728", unclipped: "#7f7f7f", clip_region: "#2ca02c", flat: "#ff7f0e",
  };
  var SVG_NS = "http://www.w3.org/2000/svg";
  // One panel's drawing area in SVG units (the SVG scales with the page).
  var W = 460, H = 330, LEFT = 52, RIGHT = 12, TOP = 30, BOTTOM = 46;

  // --- the maths: the same operations as ppo_course.clipping, in float64 ---------------------------------
  function clip(r, eps) { return Math.min(Math.max(r, 1 - eps), 1 + eps); }
  /** L^CLIP = min(r * A, clip(r, 1 - eps, 1 + eps) * A), as ppo_course.clipping.clipped_surrogate. */
  function clippedSurrogate(r, adv, eps) { return Math.min(r * adv, clip(r, eps) * adv); }
  /** Where dL/dr = 0 because of the clip: r > 1 + eps for A > 0, r < 1 - eps for A < 0. */
  function flatInterval(adv, eps) {
    if (adv > 0) return [1 + eps, R_MAX];
    if (adv < 0) return [0, 1 - eps];
    return [0, 0];
  }
  /** dL/dr at r: 0 in the flat region, A elsewhere (as the widget's readout). */
  function slope(r, adv, eps) {
    var f = flatInterval(adv, eps);
    var flat = adv > 0 ? (f[0] < r && r < f[1]) : (f[0] <= r && r < f[1]);
    return flat ? 0 : adv;
  }
  // numpy.linspace(0, R_MAX, 501): the ratios the curves are drawn at.
  var R_GRID = [];
  for (var i = 0; i < GRID_POINTS; i++) R_GRID.push(i * (R_MAX / (GRID_POINTS - 1)));
  function curve(adv, eps) { return R_GRID.map(function (r) { return clippedSurrogate(r, adv, eps); }); }

  // --- drawing -------------------------------------------------------------------------------------------
  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG_NS, name);
    for (var key in attrs) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function x(r) { return LEFT + (r / R_MAX) * (W - LEFT - RIGHT); }
  function y(v) { return TOP + (1 - (v + Y_MAX) / (2 * Y_MAX)) * (H - TOP - BOTTOM); }
  function pathOf(values) {
    var d = "";
    for (var i = 0; i < values.length; i++) d += (i ? "L" : "M") + x(R_GRID[i]).toFixed(2) + "," + y(values[i]).toFixed(2);
    return d;
  }
  function signed(v, digits) { return (v >= 0 ? "+" : "\u2212") + Math.abs(v).toFixed(digits); }

  var instanceCount = 0;

  function Panel(svgParent, sign, withLegend) {
    var id = "ppo-clip-" + (instanceCount++);
    var svg = el("svg", {viewBox: "0 0 " + W + " " + H, class: "clip-explorer-panel", role: "img",
                         "aria-label": sign > 0 ? "L^CLIP for A > 0" : "L^CLIP for A < 0"}, svgParent);
    var defs = el("defs", {}, svg);
    var pattern = el("pattern", {id: id + "-hatch", patternUnits: "userSpaceOnUse", width: 6, height: 6}, defs);
    el("path", {d: "M-1.5,1.5 l3,-3 M0,6 l6,-6 M4.5,7.5 l3,-3", stroke: COLORS.flat, "stroke-width": 1.2}, pattern);
    el("clipPath", {id: id + "-area"}, defs).appendChild(
      el("rect", {x: LEFT, y: TOP, width: W - LEFT - RIGHT, height: H - TOP - BOTTOM}));
    var color = sign > 0 ? COLORS.positive : COLORS.negative;
    var plot = el("g", {"clip-path": "url(#" + id + "-area)"}, svg);
    this.clipBand = el("rect", {y: TOP, height: H - TOP - BOTTOM, fill: COLORS.clip_region, "fill-opacity": 0.15,
                                class: "clip-band"}, plot);
    this.flatBand = el("rect", {y: TOP, height: H - TOP - BOTTOM, fill: "url(#" + id + "-hatch)", opacity: 0.6,
                                class: "flat-region"}, plot);
    el("line", {x1: LEFT, x2: W - RIGHT, y1: y(0), y2: y(0), stroke: "black", "stroke-width": 0.6}, plot);
    this.unclipped = el("path", {fill: "none", stroke: COLORS.unclipped, "stroke-width": 1.5, "stroke-dasharray": "6 4",
                                 class: "unclipped"}, plot);
    this.clipped = el("path", {fill: "none", stroke: color, "stroke-width": 2.5, class: "clipped"}, plot);
    this.point = el("circle", {r: 6, fill: color, class: "marker"}, plot);
    // Axes: frame, ticks, labels (static).
    el("rect", {x: LEFT, y: TOP, width: W - LEFT - RIGHT, height: H - TOP - BOTTOM, fill: "none", stroke: "#333",
                "stroke-width": 0.8}, svg);
    for (var t = 0; t <= R_MAX + 1e-9; t += 0.5) {
      el("line", {x1: x(t), x2: x(t), y1: H - BOTTOM, y2: H - BOTTOM + 4, stroke: "#333"}, svg);
      el("text", {x: x(t), y: H - BOTTOM + 16, "text-anchor": "middle", class: "tick"}, svg).textContent = t.toFixed(1);
    }
    for (var v = -4; v <= 4; v += 2) {
      el("line", {x1: LEFT - 4, x2: LEFT, y1: y(v), y2: y(v), stroke: "#333"}, svg);
      el("text", {x: LEFT - 7, y: y(v) + 4, "text-anchor": "end", class: "tick"}, svg).textContent = v;
    }
    el("text", {x: (LEFT + W - RIGHT) / 2, y: H - 8, "text-anchor": "middle", class: "axis-label"}, svg)
      .textContent = "probability ratio r = \u03c0_\u03b8(a|s) / \u03c0_old(a|s)";
    el("text", {x: 14, y: (TOP + H - BOTTOM) / 2, "text-anchor": "middle", class: "axis-label",
                transform: "rotate(-90 14 " + (TOP + H - BOTTOM) / 2 + ")"}, svg).textContent = "objective";
    this.title = el("text", {x: (LEFT + W - RIGHT) / 2, y: TOP - 10, "text-anchor": "middle", class: "panel-title"}, svg);
    if (withLegend) {
      var items = [  // the notebook's legend order: lines first, then the shaded regions
        ["line", {stroke: COLORS.unclipped, "stroke-dasharray": "6 4", "stroke-width": 1.5}, "r\u00b7A (unclipped)"],
        ["line", {stroke: COLORS.positive, "stroke-width": 2.5}, "L^CLIP"],
        ["rect", {fill: COLORS.clip_region, "fill-opacity": 0.3}, "clip interval [1\u2212\u03b5, 1+\u03b5]"],
        ["rect", {fill: "url(#" + id + "-hatch)", stroke: COLORS.flat, "stroke-width": 0.5}, "\u2202L/\u2202r = 0 (clip active)"],
      ];
      var lx = W - RIGHT - 170, ly = H - BOTTOM - 12 - 17 * items.length;
      el("rect", {x: lx - 6, y: ly - 6, width: 170, height: 17 * items.length + 8, fill: "white", "fill-opacity": 0.85,
                  stroke: "#ccc"}, svg);
      items.forEach(function (item, k) {
        var cy = ly + 17 * k + 6;
        if (item[0] === "rect") el("rect", Object.assign({x: lx, y: cy - 5, width: 22, height: 10}, item[1]), svg);
        else el("line", Object.assign({x1: lx, x2: lx + 22, y1: cy, y2: cy}, item[1]), svg);
        var label = el("text", {x: lx + 28, y: cy + 4, class: "legend"}, svg);
        if (item[2] === "L^CLIP") {  // L with CLIP as a superscript, as matplotlib draws $L^{CLIP}$
          label.textContent = "L";
          el("tspan", {"baseline-shift": "super", "font-size": "8px"}, label).textContent = "CLIP";
        } else {
          label.textContent = item[2];
        }
      });
    }
    this.sign = sign;
  }
  Panel.prototype.updateCurves = function (adv, eps, active) {
    this.adv = adv; this.eps = eps;
    this.clipBand.setAttribute("x", x(1 - eps));
    this.clipBand.setAttribute("width", x(1 + eps) - x(1 - eps));
    var f = flatInterval(adv, eps);
    this.flatBand.setAttribute("x", x(f[0]));
    this.flatBand.setAttribute("width", x(f[1]) - x(f[0]));
    this.unclipped.setAttribute("d", pathOf(R_GRID.map(function (r) { return r * adv; })));
    this.clipped.setAttribute("d", pathOf(curve(adv, eps)));
    this.title.textContent = "A = " + signed(adv, 2) + "  (\u03b5 = " + eps.toFixed(2) + ")";
    this.title.setAttribute("font-weight", active ? "bold" : "normal");
  };
  Panel.prototype.updatePoint = function (r) {
    var value = clippedSurrogate(r, this.adv, this.eps);
    this.point.setAttribute("cx", x(r));
    this.point.setAttribute("cy", y(value));
    return {adv: this.adv, value: value, slope: slope(r, this.adv, this.eps)};
  };

  function Explorer(root) {
    var self = this;
    root.innerHTML = "";
    root.classList.add("clip-explorer-ready");
    var controls = document.createElement("div");
    controls.className = "clip-explorer-controls";
    root.appendChild(controls);
    function slider(name, label, min, max, step, value) {
      var row = document.createElement("label");
      row.className = "clip-explorer-slider";
      var text = document.createElement("span");
      text.className = "clip-explorer-label";
      text.textContent = label;
      var input = document.createElement("input");
      input.type = "range"; input.min = min; input.max = max; input.step = step; input.value = value;
      input.name = name;
      input.setAttribute("aria-label", label);
      var readout = document.createElement("output");
      readout.className = "clip-explorer-value";
      row.appendChild(text); row.appendChild(input); row.appendChild(readout);
      controls.appendChild(row);
      return {input: input, readout: readout};
    }
    var data = root.dataset;
    this.r = slider("r", "ratio r", 0, R_MAX, 0.05, data.r || 1);
    this.eps = slider("eps", "clip \u03b5", 0.05, 0.5, 0.05, data.eps || 0.2);
    this.adv = slider("adv", "advantage A", -A_MAX, A_MAX, 0.1, data.adv || 1);
    this.readout = document.createElement("div");
    this.readout.className = "clip-explorer-readout";
    root.appendChild(this.readout);
    var figure = document.createElement("div");
    figure.className = "clip-explorer-figure";
    root.appendChild(figure);
    this.panels = [new Panel(figure, +1, true), new Panel(figure, -1, false)];
    this.r.input.addEventListener("input", function () { self.updatePoint(); });
    this.eps.input.addEventListener("input", function () { self.updateCurves(); self.updatePoint(); });
    this.adv.input.addEventListener("input", function () { self.updateCurves(); self.updatePoint(); });
    this.updateCurves();
    this.updatePoint();
  }
  Explorer.prototype.values = function () {
    return {r: parseFloat(this.r.input.value), eps: parseFloat(this.eps.input.value), adv: parseFloat(this.adv.input.value)};
  };
  Explorer.prototype.updateCurves = function () {
    var v = this.values(), size = Math.abs(v.adv);
    this.eps.readout.textContent = v.eps.toFixed(2);
    this.adv.readout.textContent = v.adv.toFixed(2);
    var active = v.adv >= 0 ? 0 : 1;
    this.panels.forEach(function (panel, k) { panel.updateCurves(panel.sign * size, v.eps, k === active); });
  };
  Explorer.prototype.updatePoint = function () {
    var v = this.values();
    this.r.readout.textContent = v.r.toFixed(2);
    this.rows = this.panels.map(function (panel) { return panel.updatePoint(v.r); });
    var cells = this.rows.map(function (row) {
      var color = row.adv >= 0 ? COLORS.positive : COLORS.negative;
      return '<span class="clip-explorer-cell"><b style="color:' + color + '">A = ' + signed(row.adv, 2) + "</b>" +
        " L = " + signed(row.value, 3) + " \u2202L/\u2202r = " + signed(row.slope, 2) + "</span>";
    });
    this.readout.innerHTML = '<span class="clip-explorer-cell">r = ' + v.r.toFixed(2) + "</span>" + cells.join("");
  };
  /** What the explorer shows now: the slider values and, per panel, A, L^CLIP and dL/dr at r. */
  Explorer.prototype.state = function () {
    var v = this.values();
    v.rows = this.rows.map(function (row) { return Object.assign({}, row); });
    return v;
  };

  var api = window.ppoClipExplorer = {
    R_MAX: R_MAX, A_MAX: A_MAX, R_GRID: R_GRID, COLORS: COLORS,
    clippedSurrogate: clippedSurrogate, flatInterval: flatInterval, slope: slope, curve: curve,
    instances: [],
  };
  function start() {
    document.querySelectorAll("div.clip-explorer:not(.clip-explorer-ready)").forEach(function (root) {
      api.instances.push(new Explorer(root));
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
