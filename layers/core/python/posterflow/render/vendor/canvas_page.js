// posterflow's canvas page: draws one filled Fabric.js canvas per call of
// window.posterflowCanvas.render(args). The engine serves this file, fabric.min.js and the page
// itself from its internal origin under a Content-Security-Policy that runs these two scripts
// only: the canvas JSON and its texts arrive as data (a Playwright evaluate argument), are drawn
// by Fabric on a <canvas> (raster) or exported with Fabric's toSVG() and placed as parsed,
// sanitised SVG (pdf) — never parsed as HTML or run as script.
"use strict";
(() => {
  const fabric = window.fabric;
  // Each canvas is drawn once: per-object cache canvases would only draw everything twice
  // (objects with a clip path still get theirs; Fabric needs it to clip).
  fabric.FabricObject.ownDefaults.objectCaching = false;
  const CHILD_LISTS = ["objects", "filters"];
  const CHILDREN = ["clipPath", "backgroundImage", "overlayImage", "resizeFilter"];
  const SVG_NS = "http://www.w3.org/2000/svg";
  const XLINK_NS = "http://www.w3.org/1999/xlink";
  const SAFE_HREF = /^(data:|blob:|https?:|#)/i;
  const DROPPED_ELEMENTS = new Set(["script", "foreignobject", "iframe", "object", "embed", "use", "a", "animate",
    "set", "animatetransform", "animatemotion", "handler", "listener"]);

  let lowerTypes = null;
  function registryType(type) {
    const json = fabric.classRegistry.json;
    if (json.has(type)) return type;
    if (lowerTypes === null) {
      lowerTypes = new Map();
      for (const key of json.keys()) if (!lowerTypes.has(key.toLowerCase())) lowerTypes.set(key.toLowerCase(), key);
    }
    return lowerTypes.get(String(type).toLowerCase().replace(/[-_]/g, "")) ?? lowerTypes.get(String(type).toLowerCase());
  }

  // Whether the prototype chain holds a method of that name (read through descriptors: no getter runs).
  function isMethod(proto, key) {
    for (let p = proto; p; p = Object.getPrototypeOf(p)) {
      const d = Object.getOwnPropertyDescriptor(p, key);
      if (d) return typeof d.value === "function";
    }
    return false;
  }

  // Fabric 5 lowercase types and Fabric 6/7 class names both resolve through Fabric's class
  // registry (which registers each class under both); other spellings are matched without case.
  // A property that would replace a method of the object's class (a string where Fabric expects
  // a function) is dropped: the JSON is data and stays data.
  function normalise(node, path, unknown) {
    if (node === null || typeof node !== "object") return;
    if (Array.isArray(node)) {
      node.forEach((child, i) => normalise(child, `${path}[${i}]`, unknown));
      return;
    }
    if (typeof node.type === "string") {
      const found = registryType(node.type);
      if (found === undefined) {
        unknown.push({ path, type: node.type });
      } else {
        node.type = found;
        delete node.objectCaching;
        const cls = fabric.classRegistry.getClass(found);
        for (const key of Object.keys(node)) if (isMethod(cls && cls.prototype, key)) delete node[key];
      }
    }
    for (const key of CHILD_LISTS) if (Array.isArray(node[key])) normalise(node[key], `${path}.${key}`, unknown);
    for (const key of CHILDREN) if (node[key] && typeof node[key] === "object") normalise(node[key], `${path}.${key}`, unknown);
  }

  function isText(obj) {
    return obj instanceof fabric.FabricText;
  }

  function measure(obj, size, boxWidth) {
    obj.set({ fontSize: size });
    if (obj instanceof fabric.Textbox) obj.set({ width: boxWidth });
    obj.initDimensions();
    return { width: obj.width, height: obj.height };
  }

  // Shrink the font size in steps of 2% of the designed size (at least 0.25 px) down to the
  // floor until the wrapped text fits the designed box; the floor itself is always tried.
  function fit(obj, rule, box) {
    const designed = obj.fontSize;
    const floor = designed * rule.min_scale;
    const step = Math.max(designed * 0.02, 0.25);
    const slack = 0.5;
    let size = designed;
    let last = null;
    for (;;) {
      last = measure(obj, size, box.width);
      if (last.width <= box.width + slack && last.height <= box.height + slack) {
        return { index: rule.index, font_size: size, scale: size / designed, fits: true };
      }
      if (size <= floor) break;
      size = Math.max(floor, size - step);
    }
    return {
      index: rule.index, font_size: size, scale: size / designed, fits: false,
      box: [box.width, box.height], needed: [last.width, last.height], designed_font_size: designed,
    };
  }

  // Scale the image to cover its designed box (centred, the overflow cropped): the box keeps
  // its place and size on the canvas.
  function cover(obj, box) {
    const el = obj.getElement();
    const nw = el.naturalWidth || el.width;
    const nh = el.naturalHeight || el.height;
    if (!nw || !nh) return;
    const bw = box.width * box.scaleX;
    const bh = box.height * box.scaleY;
    const s = Math.max(bw / nw, bh / nh);
    const sw = bw / s;
    const sh = bh / s;
    const clip = obj.clipPath;
    if (clip && !clip.absolutePositioned) {
      // The clip path lives in the object's own units, which change with its scale: keep it
      // where it was on the canvas.
      const fx = box.scaleX / s;
      const fy = box.scaleY / s;
      clip.set({ left: clip.left * fx, top: clip.top * fy, scaleX: clip.scaleX * fx, scaleY: clip.scaleY * fy });
    }
    obj.set({ cropX: (nw - sw) / 2, cropY: (nh - sh) / 2, width: sw, height: sh, scaleX: s, scaleY: s });
    obj.setCoords();
  }

  // A fresh canvas per render: nothing of the previous item (clip path, viewport, properties the
  // JSON set on the canvas) can carry over.
  let canvas = null;
  function newCanvas(width, height) {
    if (canvas !== null) {
      const old = canvas;
      canvas = null;
      old.dispose();
    }
    const el = document.createElement("canvas");
    document.getElementById("raster").replaceChildren(el);
    canvas = new fabric.StaticCanvas(el, { enableRetinaScaling: true, renderOnAddRemove: false, width, height });
    return canvas;
  }

  function sanitise(root) {
    const walker = [root];
    while (walker.length) {
      const el = walker.pop();
      for (const child of Array.from(el.children)) {
        if (DROPPED_ELEMENTS.has(child.localName.toLowerCase())) child.remove();
        else walker.push(child);
      }
      for (const attr of Array.from(el.attributes)) {
        const name = attr.name.toLowerCase();
        if (name.startsWith("on")) el.removeAttribute(attr.name);
        else if ((name === "href" || name === "xlink:href") && !SAFE_HREF.test(attr.value.trim())) {
          el.removeAttributeNS(attr.namespaceURI, attr.localName);
        }
      }
    }
  }

  async function placeSvg(c, page) {
    const markup = c.toSVG({ suppressPreamble: true, width: String(c.width), height: String(c.height) });
    const doc = new DOMParser().parseFromString(markup, "image/svg+xml");
    const svg = doc.documentElement;
    if (svg.namespaceURI !== SVG_NS || doc.getElementsByTagName("parsererror").length) {
      throw new Error("Fabric's SVG export did not parse");
    }
    sanitise(svg);
    // Decode every image first so the printed page has them all.
    const hrefs = new Set();
    for (const img of svg.getElementsByTagNameNS(SVG_NS, "image")) {
      const href = img.getAttributeNS(XLINK_NS, "href") || img.getAttribute("href");
      if (href) hrefs.add(href);
    }
    await Promise.all(Array.from(hrefs, (href) => {
      const probe = new Image();
      probe.src = href;
      return probe.decode().catch(() => null);
    }));
    svg.setAttribute("width", "100%");
    svg.setAttribute("height", "100%");
    svg.setAttribute("viewBox", `0 0 ${c.width} ${c.height}`);
    svg.setAttribute("preserveAspectRatio", "xMidYMid slice");
    const holder = document.getElementById("print");
    holder.style.width = `${page.width_mm}mm`;
    holder.style.height = `${page.height_mm}mm`;
    holder.replaceChildren(document.importNode(svg, true));
    await new Promise((resolve) => setTimeout(resolve, 0));
  }

  async function render(args) {
    const unknown = [];
    const json = args.canvas;
    normalise(json.objects, "objects", unknown);
    for (const key of CHILDREN) if (json[key] && typeof json[key] === "object") normalise(json[key], key, unknown);
    if (unknown.length) return { error: "unknown_type", unknown };
    // The canvas's own size is the request's, not the JSON's; its methods stay Fabric's.
    delete json.width;
    delete json.height;
    for (const key of Object.keys(json)) if (isMethod(fabric.StaticCanvas.prototype, key)) delete json[key];
    const boxes = (json.objects || []).map((o) => ({
      width: Number(o && o.width) || 0, height: Number(o && o.height) || 0,
      scaleX: Number(o && o.scaleX) || 1, scaleY: Number(o && o.scaleY) || 1,
    }));
    document.body.className = args.mode === "svg" ? "print" : "";
    document.getElementById("print").replaceChildren();
    const c = newCanvas(args.width, args.height);
    try {
      await c.loadFromJSON(json);
    } catch (err) {
      return { error: "load", message: String((err && err.message) || err) };
    }
    const objects = c.getObjects();
    for (const fitRule of args.images) {
      const obj = objects[fitRule.index];
      if (!(obj instanceof fabric.FabricImage)) return { error: "not_image", index: fitRule.index };
      cover(obj, boxes[fitRule.index]);
    }
    const fitted = [];
    for (const rule of args.fit) {
      const obj = objects[rule.index];
      if (!isText(obj)) return { error: "not_text", index: rule.index, type: obj ? obj.type : null };
      const outcome = fit(obj, rule, boxes[rule.index]);
      fitted.push(outcome);
      if (!outcome.fits) return { error: "text_overflow", fitted };
      obj.setCoords();
    }
    // A print needs only Fabric's SVG; a raster, the drawn canvas.
    if (args.mode === "svg") await placeSvg(c, args.page);
    else c.renderAll();
    return { fitted, objects: objects.length };
  }

  window.posterflowCanvas = Object.freeze({ version: fabric.version, render });
})();
