/* The tool-call dashboard's charts (templates/admin/mcp_app/dashboard.html).
 *
 * The figures come from the page's JSON data block (#dashboard-data, Django's json_script),
 * which the browser never runs, so the site's Content-Security-Policy (script-src 'self',
 * no inline style) holds: this file is the only script, and the charts are SVG elements
 * styled by classes from dashboard.css. The same figures are in the page's tables. */
"use strict";

(function () {
    const SVG = "http://www.w3.org/2000/svg";
    const counts = new Intl.NumberFormat("en-US");

    function element(name, attributes, parent) {
        const node = document.createElementNS(SVG, name);
        for (const [key, value] of Object.entries(attributes || {})) {
            node.setAttribute(key, String(value));
        }
        if (parent) {
            parent.appendChild(node);
        }
        return node;
    }

    function label(parent, x, y, content, className, anchor) {
        const node = element("text", {x: x, y: y, class: className || "chart-label", "text-anchor": anchor || "start"}, parent);
        node.textContent = content;
        return node;
    }

    function tooltip(parent, content) {
        element("title", {}, parent).textContent = content;
    }

    function milliseconds(value) {
        if (value === null || value === undefined) {
            return "–";
        }
        if (value < 0.001) {
            return "< 0.001 ms";
        }
        if (value >= 100) {
            return counts.format(Math.round(value)) + " ms";
        }
        return (value >= 0.01 ? value.toPrecision(3) : value.toFixed(3)) + " ms";
    }

    function shortened(text, length) {
        return text.length > length ? text.slice(0, length - 1) + "…" : text;
    }

    // The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least `value`.
    function roundedUp(value) {
        if (value <= 0) {
            return 1;
        }
        const power = Math.pow(10, Math.floor(Math.log10(value)));
        for (const step of [1, 2, 2.5, 5, 10]) {
            if (step * power >= value) {
                return step * power;
            }
        }
        return 10 * power;
    }

    function canvas(container, height) {
        container.replaceChildren();
        const width = Math.max(360, Math.floor(container.clientWidth || 900));
        const svg = element("svg", {viewBox: `0 0 ${width} ${height}`, width: width, height: height, role: "img"});
        container.appendChild(svg);
        return {svg: svg, width: width};
    }

    function empty(container) {
        const note = document.createElement("p");
        note.className = "chart-empty";
        note.textContent = container.dataset.empty || "Nothing to show.";
        container.replaceChildren(note);
    }

    // Stacked bars, one per day: calls that ended well, and errors on top. A bar links to its day's calls.
    function drawDays(container, days) {
        if (!days.some((day) => day.ok + day.errors > 0)) {
            empty(container);
            return;
        }
        const height = 260;
        const margin = {top: 12, right: 12, bottom: 40, left: 64};
        const {svg, width} = canvas(container, height);
        svg.setAttribute("aria-label", "Tool calls per day, with errors");
        const plotWidth = width - margin.left - margin.right;
        const plotHeight = height - margin.top - margin.bottom;
        const top = roundedUp(Math.max(...days.map((day) => day.ok + day.errors)));
        const y = (value) => margin.top + plotHeight - (value / top) * plotHeight;

        for (let tick = 0; tick <= 4; tick++) {
            const value = (top * tick) / 4;
            element("line", {x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value), class: tick ? "chart-grid" : "chart-axis"}, svg);
            label(svg, margin.left - 6, y(value) + 4, counts.format(value), "chart-label", "end");
        }

        const slot = plotWidth / days.length;
        const gap = Math.min(2, slot * 0.2);
        const every = Math.max(1, Math.ceil(days.length / Math.max(1, Math.floor(plotWidth / 80))));
        days.forEach((day, index) => {
            const x = margin.left + index * slot + gap / 2;
            const calls = day.ok + day.errors;
            const group = calls ? element("a", {href: day.link, class: "chart-bar-link"}, svg) : element("g", {}, svg);
            group.setAttribute("data-day", day.day);
            tooltip(group, `${day.day}: ${counts.format(calls)} calls, ${counts.format(day.errors)} errors`);
            element("rect", {x: x, y: y(day.ok), width: Math.max(1, slot - gap), height: y(0) - y(day.ok), class: "chart-ok"}, group);
            if (day.errors) {
                element("rect", {x: x, y: y(calls), width: Math.max(1, slot - gap), height: y(day.ok) - y(calls), class: "chart-error"}, group);
            }
            if (index % every === 0) {
                label(svg, x + (slot - gap) / 2, height - margin.bottom + 16, day.day.slice(5), "chart-label", "middle");
            }
        });
        element("rect", {x: margin.left, y: height - 15, width: 10, height: 10, class: "chart-ok"}, svg);
        label(svg, margin.left + 14, height - 6, "calls that ended well", "chart-legend");
        element("rect", {x: margin.left + 150, y: height - 15, width: 10, height: 10, class: "chart-error"}, svg);
        label(svg, margin.left + 164, height - 6, "errors", "chart-legend");
    }

    // One horizontal bar per tool, most called first: calls that ended well, then errors.
    function drawTools(container, tools) {
        if (!tools.length) {
            empty(container);
            return;
        }
        const row = 26;
        const margin = {top: 4, right: 150, bottom: 4, left: 170};
        const height = margin.top + margin.bottom + row * tools.length;
        const {svg, width} = canvas(container, height);
        svg.setAttribute("aria-label", "Calls per tool, with errors");
        const plotWidth = width - margin.left - margin.right;
        const top = Math.max(...tools.map((tool) => tool.calls));
        tools.forEach((tool, index) => {
            const y = margin.top + index * row;
            const group = element("g", {"data-tool": tool.name}, svg);
            tooltip(group, `${tool.name || "(no name)"}: ${counts.format(tool.calls)} calls, ${counts.format(tool.errors)} errors`);
            label(group, margin.left - 8, y + row / 2 + 4, shortened(tool.name || "(no name)", 24), "chart-label-strong", "end");
            const ok = ((tool.calls - tool.errors) / top) * plotWidth;
            const errors = (tool.errors / top) * plotWidth;
            element("rect", {x: margin.left, y: y + 4, width: Math.max(1, ok), height: row - 8, class: "chart-ok"}, group);
            if (tool.errors) {
                element("rect", {x: margin.left + ok, y: y + 4, width: Math.max(1, errors), height: row - 8, class: "chart-error"}, group);
            }
            const rate = tool.calls ? ((100 * tool.errors) / tool.calls).toFixed(1) : "0.0";
            label(group, margin.left + ok + errors + 6, y + row / 2 + 4, `${counts.format(tool.calls)} (${rate}% errors)`);
        });
    }

    // p50 to p99 of each tool on a logarithmic axis of milliseconds.
    function drawDurations(container, tools) {
        const timed = tools.filter((tool) => tool.p50 !== null && tool.p99 !== null);
        if (!timed.length) {
            empty(container);
            return;
        }
        const row = 26;
        const margin = {top: 8, right: 24, bottom: 36, left: 170};
        const height = margin.top + margin.bottom + row * timed.length;
        const {svg, width} = canvas(container, height);
        svg.setAttribute("aria-label", "Median and 99th percentile duration per tool");
        const plotWidth = width - margin.left - margin.right;
        const floor = 0.001;
        const low = Math.floor(Math.log10(Math.max(floor, Math.min(...timed.map((tool) => tool.p50)))));
        const high = Math.max(low + 1, Math.ceil(Math.log10(Math.max(floor, ...timed.map((tool) => tool.p99)))));
        const x = (value) => margin.left + ((Math.log10(Math.max(floor, value)) - low) / (high - low)) * plotWidth;
        const bottom = height - margin.bottom;

        for (let power = low; power <= high; power++) {
            const at = x(Math.pow(10, power));
            element("line", {x1: at, x2: at, y1: margin.top, y2: bottom, class: power === low ? "chart-axis" : "chart-grid"}, svg);
            label(svg, at, bottom + 14, milliseconds(Math.pow(10, power)), "chart-label", "middle");
        }
        timed.forEach((tool, index) => {
            const y = margin.top + index * row + row / 2;
            const group = element("g", {"data-tool": tool.name}, svg);
            tooltip(group, `${tool.name || "(no name)"}: p50 ${milliseconds(tool.p50)}, p99 ${milliseconds(tool.p99)}`);
            label(group, margin.left - 8, y + 4, shortened(tool.name || "(no name)", 24), "chart-label-strong", "end");
            element("line", {x1: x(tool.p50), x2: x(tool.p99), y1: y, y2: y, class: "chart-range"}, group);
            element("circle", {cx: x(tool.p50), cy: y, r: 5, class: "chart-p50"}, group);
            element("circle", {cx: x(tool.p99), cy: y, r: 5, class: "chart-p99"}, group);
        });
        element("circle", {cx: margin.left + 5, cy: height - 10, r: 5, class: "chart-p50"}, svg);
        label(svg, margin.left + 14, height - 6, "p50", "chart-legend");
        element("circle", {cx: margin.left + 50, cy: height - 10, r: 5, class: "chart-p99"}, svg);
        label(svg, margin.left + 59, height - 6, "p99", "chart-legend");
    }

    function draw() {
        const source = document.getElementById("dashboard-data");
        if (!source) {
            return; // the form had errors: no figures
        }
        const data = JSON.parse(source.textContent);
        drawDays(document.getElementById("chart-days"), data.days);
        drawTools(document.getElementById("chart-tools"), data.tools);
        drawDurations(document.getElementById("chart-durations"), data.tools);
    }

    let pending = null;
    function redrawSoon() {
        if (pending === null) {
            pending = window.requestAnimationFrame(() => {
                pending = null;
                draw();
            });
        }
    }

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", draw);
    } else {
        draw();
    }
    window.addEventListener("resize", redrawSoon);
})();
