// The dicomslide viewer: OpenSeadragon on the slide's main view, a switch of
// optical path and focal plane, and overlays (segments, parametric maps).
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("slide-config").textContent);
  var base = "/slides/" + config.id;
  function dziOf(name) {
    return name === "c0z0" ? base + ".dzi" : base + "/layers/" + name + ".dzi";
  }
  var viewer = OpenSeadragon({
    id: "viewer",
    prefixUrl: "/openseadragon/images/",
    tileSources: dziOf("c0z0"),
    showNavigator: true,
    crossOriginPolicy: false,
    maxZoomPixelRatio: 2,
    // the canvas drawer composes overlays of straight (not premultiplied) alpha
    drawer: "canvas"
  });
  window.dicomslideViewer = viewer;
  var overlays = {};  // name -> TiledImage
  var views = config.layers.filter(function (l) { return l.kind === "OPTICAL_PATH"; });
  var derived = config.layers.filter(function (l) { return l.kind !== "OPTICAL_PATH"; });

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (k) { node.setAttribute(k, attributes[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // views: one radio button per optical path and focal plane
  var viewSection = document.getElementById("views");
  views.forEach(function (layer) {
    var label = element("label");
    var input = element("input", { type: "radio", name: "view", value: layer.name });
    if (layer.name === "c0z0") { input.checked = true; }
    input.addEventListener("change", function () {
      viewer.addTiledImage({
        tileSource: dziOf(layer.name), index: 0, x: 0, y: 0, width: 1, replace: true
      });
    });
    label.appendChild(input);
    label.appendChild(document.createTextNode(" " + layer.label +
      (config.focal_planes > 1 ? " at " + layer.focus + " µm" : "")));
    viewSection.appendChild(label);
    viewSection.appendChild(element("br"));
  });

  // overlays: a check box and an opacity slider each
  var overlaySection = document.getElementById("overlays");
  if (!derived.length) { overlaySection.appendChild(element("p", {}, "none")); }
  derived.forEach(function (layer) {
    var row = element("div", { "class": "overlay" });
    var box = element("input", { type: "checkbox", id: "overlay-" + layer.name, "data-layer": layer.name });
    var opacity = element("input", { type: "range", min: "0", max: "100", value: "60",
      id: "opacity-" + layer.name, "aria-label": "opacity" });
    box.addEventListener("change", function () {
      if (box.checked) {
        viewer.addTiledImage({
          tileSource: dziOf(layer.name), x: 0, y: 0, width: 1,
          opacity: opacity.value / 100,
          success: function (event) { overlays[layer.name] = event.item; }
        });
      } else if (overlays[layer.name]) {
        viewer.world.removeItem(overlays[layer.name]);
        delete overlays[layer.name];
      }
    });
    opacity.addEventListener("input", function () {
      if (overlays[layer.name]) { overlays[layer.name].setOpacity(opacity.value / 100); }
    });
    var label = element("label", { "for": box.id });
    if (layer.color) {
      var swatch = element("span", { "class": "swatch" });
      swatch.style.background = layer.color;
      label.appendChild(swatch);
      label.appendChild(document.createTextNode(" "));
    }
    label.appendChild(document.createTextNode(layer.label + " (" + layer.kind.toLowerCase() + ")"));
    row.appendChild(box);
    row.appendChild(label);
    row.appendChild(element("br"));
    row.appendChild(opacity);
    if (layer.kind === "PARAMETER" && layer.range) {
      row.appendChild(element("span", { "class": "colormap" }));
      row.appendChild(element("small", {}, layer.range[0].toPrecision(3) + " … " + layer.range[1].toPrecision(3)));
    }
    overlaySection.appendChild(row);
  });

  // for tests and scripts: whether every shown image has drawn its tiles
  window.dicomslideReady = function () {
    var count = viewer.world.getItemCount();
    if (!count) { return false; }
    for (var i = 0; i < count; i++) {
      if (!viewer.world.getItemAt(i).getFullyLoaded()) { return false; }
    }
    return true;
  };
})();
