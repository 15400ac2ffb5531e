/* lpd-pipeline results page: one OpenSeadragon viewer per image. The tile sources are inline DZI descriptions
   (in the JSON block "lpd-viewers"), so nothing is fetched by XHR and the page works from file://.
   window.lpdTileStats[viewerId] counts loaded/failed tiles (read by the browser test). */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("lpd-viewers").textContent);
  var viewers = {}, groups = {}, stats = {};
  window.lpdViewers = viewers;
  window.lpdTileStats = stats;
  config.viewers.forEach(function (spec) {
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
    (groups[spec.group] = groups[spec.group] || []).push(viewer);
  });

  /* Linked zoom: the views of one painting follow each other (same aspect ratio, same viewport coordinates). */
  var syncing = false;
  function linked(group) {
    var box = document.querySelector('input[data-sync-group="' + group + '"]');
    return !box || box.checked;
  }
  Object.keys(groups).forEach(function (group) {
    groups[group].forEach(function (viewer) {
      function follow() {
        if (syncing || !linked(group)) { return; }
        syncing = true;
        groups[group].forEach(function (other) {
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
  });
})();
