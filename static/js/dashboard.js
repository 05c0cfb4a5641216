/* 同心 Tongxin dashboards: draws the charts with Apache ECharts, served from
   static/vendor/echarts/ (copied from npm by `make assets`; no CDN).  Each chart
   container names the json_script element holding its data in data-chart-source. */
(function () {
  "use strict";

  function trendOption(data, showAbnormal) {
    var series = [{
      name: data.labels.completion,
      type: "line",
      data: data.completion,
      connectNulls: false,
      smooth: true,
      symbolSize: 6,
      yAxisIndex: 0,
      itemStyle: { color: "#1a7f37" },
      areaStyle: { opacity: 0.08 }
    }];
    var yAxis = [{ type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } }];
    if (showAbnormal) {
      series.push({
        name: data.labels.abnormal,
        type: "line",
        data: data.abnormal,
        yAxisIndex: 1,
        symbolSize: 6,
        itemStyle: { color: "#c62828" }
      });
      yAxis.push({ type: "value", minInterval: 1, splitLine: { show: false } });
    }
    return {
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 48, right: showAbnormal ? 40 : 16, top: 36, bottom: 28 },
      xAxis: { type: "category", data: data.dates, boundaryGap: false },
      yAxis: yAxis,
      series: series
    };
  }

  function draw() {
    if (!window.echarts) { return; }
    var containers = document.querySelectorAll("[data-chart-source]");
    Array.prototype.forEach.call(containers, function (el) {
      var source = document.getElementById(el.getAttribute("data-chart-source"));
      if (!source) { return; }
      var data = JSON.parse(source.textContent);
      if (!data || !data.dates) { return; }
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(trendOption(data, el.getAttribute("data-show-abnormal") === "1"));
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
