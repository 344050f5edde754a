// Answers drawn over what was dropped: labelled boxes and translucent masks over the image (from /v1/detect,
// /v1/segment or a chat reply's objects), and a moment marked on a clip's timeline (from a chat reply's moment).
// Plain functions shared with app.js; no dependencies.
"use strict";

const PALETTE = [
  [230, 57, 70], [29, 120, 226], [42, 157, 92], [244, 162, 97], [131, 56, 236], [0, 150, 160], [200, 120, 0],
];

// One colour per label, the same every time the label comes back.
function labelColour(label) {
  let hash = 0;
  for (const char of label) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

// COCO uncompressed RLE ({size: [h, w], counts}, runs down the columns, starting with a run of 0s) as a
// row-major array of 0/1 for a w x h image.
function decodeRle(rle) {
  const [height, width] = rle.size;
  const mask = new Uint8Array(width * height);
  let position = 0;
  rle.counts.forEach((run, index) => {
    if (index % 2 === 1) {
      for (let k = position; k < position + run; k++) {
        mask[(k % height) * width + Math.floor(k / height)] = 1;
      }
    }
    position += run;
  });
  return { width, height, mask };
}

// The image at imageUrl on canvas, at its own pixel size (the boxes' units), with each object's mask tinted
// in its label's colour, its box outlined and its label written above the box.
async function drawObjects(canvas, imageUrl, objects) {
  const image = new Image();
  image.src = imageUrl;
  await image.decode();
  const [width, height] = [image.naturalWidth, image.naturalHeight];
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0, width, height);
  const line = Math.max(2, Math.round(Math.max(width, height) / 300));
  for (const object of objects) {
    const [r, g, b] = labelColour(object.label);
    if (object.mask) tintMask(context, decodeRle(object.mask), [r, g, b], width, height);
    const [x0, y0, x1, y1] = object.box;
    context.strokeStyle = `rgb(${r}, ${g}, ${b})`;
    context.lineWidth = line;
    context.strokeRect(x0, y0, x1 - x0, y1 - y0);
    const size = Math.max(11, Math.round(Math.max(width, height) / 40));
    context.font = `${size}px system-ui, sans-serif`;
    const text = object.label;
    const textWidth = context.measureText(text).width + 6;
    const top = y0 >= size + 4 ? y0 - size - 4 : y0;
    context.fillStyle = `rgb(${r}, ${g}, ${b})`;
    context.fillRect(x0, top, textWidth, size + 4);
    context.fillStyle = "#fff";
    context.fillText(text, x0 + 3, top + size);
  }
  canvas.hidden = false;
}

function tintMask(context, decoded, [r, g, b], width, height) {
  if (decoded.width !== width || decoded.height !== height) return; // a mask of another image: not drawn
  const pixels = context.getImageData(0, 0, width, height);
  const data = pixels.data;
  for (let i = 0; i < decoded.mask.length; i++) {
    if (!decoded.mask[i]) continue;
    data[4 * i] = Math.round(0.5 * data[4 * i] + 0.5 * r);
    data[4 * i + 1] = Math.round(0.5 * data[4 * i + 1] + 0.5 * g);
    data[4 * i + 2] = Math.round(0.5 * data[4 * i + 2] + 0.5 * b);
  }
  context.putImageData(pixels, 0, 0);
}

const seconds = (value) => `${Number(value.toFixed(2))} s`;

// The moment [start, end] of a clip lasting duration seconds as a band on the timeline; clicking the band
// plays the clip from its start.
function markMoment(timeline, band, caption, player, moment) {
  const duration = Number.isFinite(player.duration) && player.duration > 0 ? player.duration : moment.duration;
  const start = Math.min(Math.max(moment.start / duration, 0), 1);
  const end = Math.min(Math.max(moment.end / duration, start), 1);
  band.style.left = `${(start * 100).toFixed(2)}%`;
  band.style.width = `${((end - start) * 100).toFixed(2)}%`;
  band.hidden = false;
  band.title = `${seconds(moment.start)} to ${seconds(moment.end)}`;
  caption.textContent = `The answer's moment: ${seconds(moment.start)} to ${seconds(moment.end)} of ${seconds(duration)}.`;
  band.onclick = () => {
    player.currentTime = moment.start;
    player.play().catch(() => {}); // a clip this browser cannot play still shows its moment
  };
  timeline.setAttribute("aria-label", `Clip timeline, moment marked from ${band.title}`);
}

function clearMoment(band, caption) {
  band.hidden = true;
  caption.textContent = "";
}
