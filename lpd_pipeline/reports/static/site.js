/* lpd-pipeline results page: one OpenSeadragon viewer per image. The tile sources are inline DZI descriptions
   (in the JSON block "lpd-viewers"), so nothing is fetched by XHR and the page works from file://.
   Viewers of a painting are created when it comes near the screen (a page of many paintings stays light);
   window.lpdOpenAll() creates them all. window.lpdTileStats[viewerId] counts loaded/failed tiles (read by the
   browser test). */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("lpd-viewers").textContent);
  var viewers = {}, stats = {}, specsByGroup = {}, opened = {};
  window.lpdViewers = viewers;
  window.lpdTileStats = stats;
  config.viewers.forEach(function (spec) {
    (specsByGroup[spec.group] = specsByGroup[spec.group] || []).push(spec);
  });

  function createViewer(spec) {
    var record = { loaded: 0, failed: 0, levels: [], urls: [], failedUrls: [], open: false };
    stats[spec.id] = record;
    var viewer = OpenSeadragon({
      id: spec.id,
      prefixUrl: config.prefixUrl,
      tileSources: spec.tileSource,
      drawer: "canvas",          /* file:// images taint WebGL textures; the 2D canvas draws them fine */
      showNavigator: true,
      navigatorPosition: "BOTTOM_RIGHT",
      maxZoomPixelRatio: 2,
      visibilityRatio: 1,
      constrainDuringPan: true
    });
    viewer.addHandler("open", function () { record.open = true; });
    viewer.addHandler("tile-loaded", function (event) {
      record.loaded += 1;
      record.levels.push(event.tile.level);
      record.urls.push(event.tile.getUrl());
    });
    viewer.addHandler("tile-load-failed", function (event) {
      record.failed += 1;
      record.failedUrls.push(event.tile.getUrl());
    });
    viewers[spec.id] = viewer;
    return viewer;
  }

  /* Linked zoom: the views of one painting follow each other (same aspect ratio, same viewport coordinates). */
  var syncing = false;
  function linked(group) {
    var box = document.querySelector('input[data-sync-group="' + group + '"]');
    return !box || box.checked;
  }
  function openGroup(group) {
    if (opened[group] || !specsByGroup[group]) { return; }
    opened[group] = true;
    var members = specsByGroup[group].map(createViewer);
    members.forEach(function (viewer) {
      function follow() {
        if (syncing || !linked(group)) { return; }
        syncing = true;
        members.forEach(function (other) {
          if (other !== viewer && other.world.getItemCount()) {
            other.viewport.zoomTo(viewer.viewport.getZoom(), null, true);
            other.viewport.panTo(viewer.viewport.getCenter(), true);
          }
        });
        syncing = false;
      }
      viewer.addHandler("zoom", follow);
      viewer.addHandler("pan", follow);
    });
  }
  window.lpdOpenAll = function () { Object.keys(specsByGroup).forEach(openGroup); };

  var articles = document.querySelectorAll("article.painting[data-group]");
  if ("IntersectionObserver" in window) {
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) {
          openGroup(entry.target.getAttribute("data-group"));
          observer.unobserve(entry.target);
        }
      });
    }, { rootMargin: "600px 0px" });
    Array.prototype.forEach.call(articles, function (article) { observer.observe(article); });
  } else {
    window.lpdOpenAll();
  }
})();
