/* Outpost telemetry: small live SVG line charts and a live latest-values table.
 *
 * No library, no inline code (CSP: script-src 'self'): everything comes from data-*
 * attributes and same-origin JSON.
 *
 * - [data-telemetry-chart]: data-source (the JSON endpoint), data-params (the query, as
 *   JSON), data-timezone, data-refresh (seconds), data-label. Draws axes, time labels in
 *   the time zone, the unit, a hover/keyboard read-out of the nearest point, and fills
 *   the figure's table ([data-telemetry-rows]) with the same points. With no point at
 *   all it shows the figure's [data-telemetry-empty] message instead.
 * - [data-telemetry-picker] (a <select>, data-for=<chart id>): switches the chart's
 *   metric (and aggregate, from the option's data-aggregate).
 * - [data-telemetry-latest] (a table): data-source, data-timezone, data-refresh,
 *   data-asset-url (ASSET_ID is replaced): re-rendered from the latest values.
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var WIDTH = 760;
  var HEIGHT = 260;
  var MARGIN = { top: 14, right: 18, bottom: 30, left: 62 };
  var MAX_TABLE_ROWS = 2000;

  function svg(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (key) {
      node.setAttribute(key, String(attrs[key]));
    });
    if (parent) {
      parent.appendChild(node);
    }
    return node;
  }

  function formatter(timezone, options) {
    var settings = Object.assign({ hourCycle: "h23" }, options);
    try {
      return new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: timezone }, settings));
    } catch (error) {
      return new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: "UTC" }, settings));
    }
  }

  function timeFormats(timezone) {
    return {
      tick: formatter(timezone, { hour: "2-digit", minute: "2-digit" }),
      day: formatter(timezone, { day: "2-digit", month: "short" }),
      full: formatter(timezone, {
        year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      }),
    };
  }

  function formatValue(value, valueType) {
    if (value === null || value === undefined) {
      return "—";
    }
    if (valueType === "bool" || typeof value === "boolean") {
      return value === true || value === 1 ? "yes" : "no";
    }
    return Number(value).toLocaleString("en-US", { maximumFractionDigits: 3 });
  }

  function withUnit(text, unit) {
    return unit ? text + " " + unit : text;
  }

  /* Round tick values covering [low, high]: 1, 2 or 5 times a power of ten apart. */
  function niceTicks(low, high, count) {
    if (low === high) {
      low -= 1;
      high += 1;
    }
    var raw = (high - low) / Math.max(count, 1);
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * power; }).find(function (s) {
      return s >= raw;
    });
    var ticks = [];
    for (var v = Math.floor(low / step) * step; v <= high + step / 2; v += step) {
      ticks.push(Number(v.toFixed(10)));
    }
    return ticks;
  }

  /* Hour steps for the time axis: about six labels whatever the range. */
  function timeTicks(startMs, endMs) {
    var steps = [5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map(function (m) {
      return m * 60000;
    });
    var span = endMs - startMs;
    var step = steps.find(function (s) { return span / s <= 7; }) || steps[steps.length - 1];
    var ticks = [];
    for (var t = Math.ceil(startMs / step) * step; t <= endMs; t += step) {
      ticks.push(t);
    }
    return ticks;
  }

  function pointsOf(result) {
    var series = (result.series || []).filter(function (s) { return s.points.length; });
    return series.map(function (s) {
      return {
        unit: s.unit,
        valueType: s.value_type,
        points: s.points
          .filter(function (p) { return p[1] !== null; })
          .map(function (p) { return { t: Date.parse(p[0]), v: p[1] === true ? 1 : p[1] === false ? 0 : p[1] }; }),
      };
    }).filter(function (s) { return s.points.length; });
  }

  function everyMs(every) {
    var match = /^(\d+)([smhd])$/.exec(every || "");
    if (!match) {
      return null;
    }
    return Number(match[1]) * { s: 1000, m: 60000, h: 3600000, d: 86400000 }[match[2]];
  }

  /* The SVG path of a series: a gap wider than three windows breaks the line. */
  function pathOf(points, x, y, gapMs) {
    var d = "";
    var previous = null;
    points.forEach(function (p) {
      var jump = previous === null || (gapMs !== null && p.t - previous > gapMs * 3);
      d += (jump ? "M" : "L") + x(p.t).toFixed(1) + " " + y(p.v).toFixed(1);
      previous = p.t;
    });
    return d;
  }

  function draw(container, result, state) {
    var figure = container.closest("figure") || container.parentNode;
    var empty = figure.querySelector("[data-telemetry-empty]");
    var failure = figure.querySelector("[data-telemetry-error]");
    if (failure) {
      failure.hidden = true;
    }
    var series = pointsOf(result);
    container.textContent = "";
    fillTable(figure, series, state);
    if (!series.length) {
      container.hidden = true;
      if (empty) {
        empty.hidden = false;
      }
      return;
    }
    container.hidden = false;
    if (empty) {
      empty.hidden = true;
    }
    var unit = series[0].unit;
    var valueType = series[0].valueType;
    var width = Math.max(container.clientWidth || WIDTH, 320);
    var plotW = width - MARGIN.left - MARGIN.right;
    var plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
    var startMs = Date.parse(result.start);
    var endMs = Date.parse(result.end);
    var all = [];
    series.forEach(function (s) { s.points.forEach(function (p) { all.push(p.v); }); });
    var low = Math.min.apply(null, all);
    var high = Math.max.apply(null, all);
    if (valueType === "bool") {
      low = 0;
      high = 1;
    } else if (low > 0 && low < (high - low)) {
      low = 0;
    }
    var yTicks = niceTicks(low, high, 5);
    low = Math.min(low, yTicks[0]);
    high = Math.max(high, yTicks[yTicks.length - 1]);
    var x = function (t) { return MARGIN.left + ((t - startMs) / (endMs - startMs)) * plotW; };
    var y = function (v) { return MARGIN.top + plotH - ((v - low) / (high - low || 1)) * plotH; };

    var latest = series[0].points[series[0].points.length - 1];
    var label = state.label + ": " + series[0].points.length + " points, latest " +
      withUnit(formatValue(latest.v, valueType), unit) + " at " + state.formats.full.format(latest.t);
    var root = svg("svg", {
      viewBox: "0 0 " + width + " " + HEIGHT, width: width, height: HEIGHT,
      role: "img", "aria-label": label, class: "telemetry-svg", focusable: "false",
    }, container);
    svg("title", {}, root).textContent = label;

    var axes = svg("g", { class: "telemetry-axes", "aria-hidden": "true" }, root);
    yTicks.forEach(function (v) {
      svg("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(v), y2: y(v), class: "grid" }, axes);
      svg("text", { x: MARGIN.left - 8, y: y(v) + 4, "text-anchor": "end" }, axes).textContent =
        valueType === "bool" ? (v === 1 ? "yes" : v === 0 ? "no" : "") : formatValue(v, valueType);
    });
    if (unit) {
      svg("text", { x: 4, y: MARGIN.top - 2, class: "unit" }, axes).textContent = unit;
    }
    var ticks = timeTicks(startMs, endMs);
    var dayChanges = (endMs - startMs) > 86400000;
    ticks.forEach(function (t) {
      svg("line", { x1: x(t), x2: x(t), y1: MARGIN.top + plotH, y2: MARGIN.top + plotH + 5, class: "tick" }, axes);
      var text = dayChanges ? state.formats.day.format(t) + " " + state.formats.tick.format(t)
        : state.formats.tick.format(t);
      svg("text", { x: x(t), y: HEIGHT - 8, "text-anchor": "middle" }, axes).textContent = text;
    });
    svg("line", {
      x1: MARGIN.left, x2: width - MARGIN.right, y1: MARGIN.top + plotH, y2: MARGIN.top + plotH,
      class: "axis",
    }, axes);

    var gap = everyMs(result.every);
    series.forEach(function (s, i) {
      svg("path", { d: pathOf(s.points, x, y, gap), class: "line line-" + (i % 4) }, root);
    });
    hover(root, series[0], x, y, unit, valueType, state, plotH, width);
  }

  function hover(root, series, x, y, unit, valueType, state, plotH, width) {
    var marker = svg("g", { class: "telemetry-hover", visibility: "hidden" }, root);
    var rule = svg("line", { y1: MARGIN.top, y2: MARGIN.top + plotH }, marker);
    var dot = svg("circle", { r: 4 }, marker);
    var box = svg("rect", { height: 22, rx: 3 }, marker);
    var text = svg("text", {}, marker);
    var live = state.readout;
    var index = series.points.length - 1;

    function show(i) {
      index = Math.max(0, Math.min(series.points.length - 1, i));
      var p = series.points[index];
      var px = x(p.t);
      var py = y(p.v);
      var words = state.formats.full.format(p.t) + " · " + withUnit(formatValue(p.v, valueType), unit);
      rule.setAttribute("x1", px);
      rule.setAttribute("x2", px);
      dot.setAttribute("cx", px);
      dot.setAttribute("cy", py);
      text.textContent = words;
      var textWidth = words.length * 6.6 + 12;
      var left = Math.min(Math.max(px - textWidth / 2, MARGIN.left), width - MARGIN.right - textWidth);
      box.setAttribute("x", left);
      box.setAttribute("y", MARGIN.top);
      box.setAttribute("width", textWidth);
      text.setAttribute("x", left + 6);
      text.setAttribute("y", MARGIN.top + 15);
      marker.setAttribute("visibility", "visible");
      if (live) {
        live.textContent = words;
      }
    }

    function nearest(event) {
      var bounds = root.getBoundingClientRect();
      var scale = (root.viewBox.baseVal.width || bounds.width) / bounds.width;
      var at = (event.clientX - bounds.left) * scale;
      var best = 0;
      series.points.forEach(function (p, i) {
        if (Math.abs(x(p.t) - at) < Math.abs(x(series.points[best].t) - at)) {
          best = i;
        }
      });
      return best;
    }

    root.setAttribute("tabindex", "0");
    root.addEventListener("mousemove", function (event) { show(nearest(event)); });
    root.addEventListener("mouseleave", function () { marker.setAttribute("visibility", "hidden"); });
    root.addEventListener("focus", function () { show(index); });
    root.addEventListener("blur", function () { marker.setAttribute("visibility", "hidden"); });
    root.addEventListener("keydown", function (event) {
      if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
        event.preventDefault();
        show(index + (event.key === "ArrowLeft" ? -1 : 1));
      }
    });
  }

  function fillTable(figure, series, state) {
    var body = figure.querySelector("[data-telemetry-rows]");
    if (!body) {
      return;
    }
    body.textContent = "";
    var rows = [];
    series.forEach(function (s) {
      s.points.forEach(function (p) { rows.push([p.t, withUnit(formatValue(p.v, s.valueType), s.unit)]); });
    });
    rows.slice(-MAX_TABLE_ROWS).reverse().forEach(function (row) {
      var tr = document.createElement("tr");
      var time = document.createElement("td");
      time.textContent = state.formats.full.format(row[0]);
      var value = document.createElement("td");
      value.className = "num";
      value.textContent = row[1];
      tr.appendChild(time);
      tr.appendChild(value);
      body.appendChild(tr);
    });
    if (!rows.length) {
      var tr = document.createElement("tr");
      var td = document.createElement("td");
      td.colSpan = 2;
      td.className = "muted";
      td.textContent = "No data in this range.";
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }

  function url(source, params) {
    var target = new URL(source, window.location.href);
    Object.keys(params).forEach(function (key) {
      if (params[key] !== null && params[key] !== undefined && params[key] !== "") {
        target.searchParams.set(key, params[key]);
      }
    });
    return target;
  }

  /* The server's problem detail, from a JSON body or the HTML error page. */
  function failureText(response, body) {
    if (body && body.indexOf("<") === 0) {
      var page = new DOMParser().parseFromString(body, "text/html");
      var detail = page.querySelector(".error-detail");
      if (detail && detail.textContent.trim()) {
        return detail.textContent.trim();
      }
    }
    return "The telemetry could not be loaded (" + response.status + ").";
  }

  function getJson(target) {
    return fetch(target, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.ok) {
          return response.json();
        }
        return response.text().then(function (body) {
          throw new Error(failureText(response, body));
        });
      });
  }

  function every(seconds, task) {
    var period = Math.max(Number(seconds) || 10, 2) * 1000;
    window.setInterval(function () {
      if (!document.hidden) {
        task();
      }
    }, period);
  }

  function setUpChart(container) {
    var figure = container.closest("figure") || container.parentNode;
    var readout = document.createElement("p");
    readout.className = "visually-hidden";
    readout.setAttribute("aria-live", "polite");
    figure.appendChild(readout);
    var state = {
      source: container.getAttribute("data-source"),
      params: JSON.parse(container.getAttribute("data-params") || "{}"),
      formats: timeFormats(container.getAttribute("data-timezone") || "UTC"),
      label: container.getAttribute("data-label") || "Telemetry",
      readout: readout,
    };
    var csv = figure.querySelector("[data-telemetry-csv]");

    function load() {
      return getJson(url(state.source, state.params)).then(function (result) {
        container.setAttribute("data-state", "drawn");
        draw(container, result, state);
      }).catch(function (error) {
        var failure = figure.querySelector("[data-telemetry-error]");
        container.setAttribute("data-state", "failed");
        if (failure) {
          failure.textContent = error.message;
          failure.hidden = false;
        }
      });
    }

    container.telemetry = {
      show: function (metric, aggregate, label) {
        state.params.metric = metric;
        state.params.aggregate = aggregate || state.params.aggregate;
        state.label = label || state.label;
        if (csv) {
          csv.href = url(state.source, Object.assign({}, state.params, { format: "csv" })).href;
        }
        return load();
      },
    };
    load();
    every(container.getAttribute("data-refresh"), load);
  }

  function setUpPicker(select) {
    select.addEventListener("change", function () {
      var chart = document.getElementById(select.getAttribute("data-for"));
      var option = select.options[select.selectedIndex];
      if (chart && chart.telemetry) {
        chart.telemetry.show(option.value, option.getAttribute("data-aggregate"), option.textContent.trim());
      }
    });
  }

  function setUpLatest(table) {
    var body = table.tBodies[0];
    var empty = table.parentNode.querySelector("[data-telemetry-latest-empty]");
    var formats = timeFormats(table.getAttribute("data-timezone") || "UTC");
    var assetUrl = table.getAttribute("data-asset-url") || "";

    function cell(row, text, className) {
      var td = document.createElement("td");
      td.textContent = text;
      if (className) {
        td.className = className;
      }
      row.appendChild(td);
      return td;
    }

    function render(result) {
      var names = {};
      result.assets.forEach(function (a) { names[a.id] = a.name; });
      body.textContent = "";
      result.readings.forEach(function (r) {
        var row = document.createElement("tr");
        row.setAttribute("data-asset", r.asset_id);
        row.setAttribute("data-metric", r.metric);
        var first = cell(row, "");
        var link = document.createElement("a");
        link.href = assetUrl.replace("ASSET_ID", encodeURIComponent(r.asset_id));
        link.textContent = names[r.asset_id] || r.asset_id;
        first.appendChild(link);
        var code = document.createElement("code");
        code.textContent = r.metric;
        cell(row, "").appendChild(code);
        cell(row, formatValue(r.value, r.value_type), "num");
        cell(row, r.unit);
        cell(row, formats.full.format(Date.parse(r.time)), "nowrap");
        body.appendChild(row);
      });
      table.hidden = !result.readings.length;
      if (empty) {
        empty.hidden = Boolean(result.readings.length);
      }
      table.setAttribute("data-state", "live");
    }

    function load() {
      getJson(table.getAttribute("data-source")).then(render).catch(function () {
        table.setAttribute("data-state", "stale");
      });
    }

    every(table.getAttribute("data-refresh"), load);
  }

  function start() {
    document.querySelectorAll("[data-telemetry-chart]").forEach(setUpChart);
    document.querySelectorAll("[data-telemetry-picker]").forEach(setUpPicker);
    document.querySelectorAll("[data-telemetry-latest]").forEach(setUpLatest);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
