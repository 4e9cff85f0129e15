// The `viseme view` page: a character talking in sync with its sound, in any browser, offline.
//
// Bundled by scripts/build_viewer.sh (esbuild) with three.js and @pixiv/three-vrm into ONE
// file, toolkit/view/viewer.bundle.js, which `toolkit.view.page` inlines into the page it
// writes.  The page carries its data in <script type="application/json" id="viseme-data">:
//   {title, model: {base64, name, facing}, audio: {base64, mime} | null, animation: {...} (the
//    toolkit's animation JSON: fps, channels, values, phonemes, words)}
// The model is the animated glTF/VRM the toolkit writes (toolkit.export.gltf): its clip is
// the Performance of toolkit.gltf.drive, so the browser plays exactly what the file holds.
// The clip's time follows the audio element's currentTime: sound and face cannot drift.
//
// window.viseme is the page's small API (the browser tests use it):
//   ready            a Promise, resolved once the character is on screen (rejected on error)
//   seek(t)          jump to t seconds (audio and face), render, return the time
//   play(), pause(), time()
//   influences()     [{node, name, values}] every morph-target mesh's current weights
//                    (node: the glTF node index the mesh belongs to)
//   labels()         {phoneme, word, viseme} as shown
//   inspect(base64)  load any .glb/.vrm/.vrma with the same loader; a summary (for tests)
//   playVrma(vrmBase64, vrmaBase64, t)  a VRM Animation applied to a VRM at t: its expressions, head
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { MeshoptDecoder } from 'three/addons/libs/meshopt_decoder.module.js';
import { VRMLoaderPlugin } from '@pixiv/three-vrm';
import { VRMAnimationLoaderPlugin, createVRMAnimationClip } from '@pixiv/three-vrm-animation';

// Curves drawn under the character, when the animation has them (the mouth's main motions, a blink).
const CURVES = [
  ['jawOpen', '#e4572e'], ['mouthClose', '#4f86c6'], ['mouthFunnel', '#17bebb'],
  ['mouthPucker', '#9d4edd'], ['mouthStretchLeft', '#76b041'], ['eyeBlinkLeft', '#aaaaaa'],
];

function bytesOf(base64) {
  const bin = atob(base64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

/** A GLTFLoader that reads what the toolkit writes: VRM 0.x/1.0, VRMA, meshopt-compressed buffers. */
function makeLoader(vrm = true) {
  const loader = new GLTFLoader();
  loader.setMeshoptDecoder(MeshoptDecoder);
  if (vrm) {
    loader.register((parser) => new VRMLoaderPlugin(parser));
    loader.register((parser) => new VRMAnimationLoaderPlugin(parser));
  }
  return loader;
}

function parse(buffer, vrm = true) {
  return new Promise((resolve, reject) => makeLoader(vrm).parse(buffer, '', resolve, reject));
}

/** The character; a VRM that three-vrm refuses (a required humanoid bone missing...) still plays as plain glTF. */
async function loadCharacter(buffer, warn) {
  try {
    return await parse(buffer);
  } catch (e) {
    const gltf = await parse(buffer, false);
    warn(`VRM features off (${e && e.message ? e.message : e}); shown as plain glTF`);
    return gltf;
  }
}

/** The glTF node index of a three.js object (a multi-primitive mesh's parts belong to their group's node). */
function nodeOf(parser, obj) {
  for (let o = obj; o; o = o.parent) {
    const a = parser.associations.get(o);
    if (a && a.nodes !== undefined) return a.nodes;
  }
  return -1;
}

function morphMeshes(root) {
  const out = [];
  root.traverse((o) => { if (o.isMesh && o.morphTargetInfluences && o.morphTargetInfluences.length) out.push(o); });
  return out;
}

// -- the page ---------------------------------------------------------------------------------------
const CSS = `
html,body{margin:0;height:100%;background:#1e2127;color:#e8e8e8;font:14px system-ui,sans-serif}
#vs-root{display:flex;flex-direction:column;height:100%}
#vs-stage{flex:1;min-height:200px;position:relative}
#vs-stage canvas{display:block;width:100%;height:100%}
#vs-title{position:absolute;left:12px;top:8px;opacity:.7}
#vs-error{position:absolute;left:12px;top:32px;color:#ff8a80;white-space:pre-wrap}
#vs-bar{display:flex;gap:12px;align-items:center;padding:8px 12px;background:#262a31}
#vs-bar button{width:72px;padding:4px;font:inherit;background:#3b4250;color:#fff;border:0;border-radius:4px;cursor:pointer}
#vs-scrub{flex:1}
#vs-time{font-variant-numeric:tabular-nums;width:110px}
.vs-label{min-width:90px}.vs-label b{font-size:18px;color:#ffd166}
#vs-curves{height:150px;width:100%;display:block;background:#16181d;cursor:pointer}
`;

function el(tag, attrs = {}, parent = null) {
  const e = document.createElement(tag);
  Object.assign(e, attrs);
  if (parent) parent.appendChild(e);
  return e;
}

function buildPage(title) {
  el('style', { textContent: CSS }, document.head);
  const root = el('div', { id: 'vs-root' }, document.body);
  const stage = el('div', { id: 'vs-stage' }, root);
  el('div', { id: 'vs-title', textContent: title }, stage);
  const error = el('div', { id: 'vs-error' }, stage);
  const bar = el('div', { id: 'vs-bar' }, root);
  const button = el('button', { id: 'vs-play', textContent: 'Play' }, bar);
  const scrub = el('input', { id: 'vs-scrub', type: 'range', min: 0, max: 1, step: 0.001, value: 0 }, bar);
  const time = el('span', { id: 'vs-time', textContent: '0.00 s' }, bar);
  const phoneme = el('span', { className: 'vs-label', id: 'vs-phoneme' }, bar);
  const word = el('span', { className: 'vs-label', id: 'vs-word' }, bar);
  const curves = el('canvas', { id: 'vs-curves' }, root);
  return { stage, error, button, scrub, time, phoneme, word, curves };
}

/** The label of the segment (phoneme or word) at time t, or ''. */
function segmentAt(segments, t) {
  for (const s of segments || []) if (s.start <= t && t < s.end) return s.label;
  return '';
}

/** Animation JSON channel value at t (linear between frames, like the clip). */
function channelAt(anim, j, t) {
  const f = Math.min(Math.max(t * anim.fps, 0), anim.values.length - 1);
  const i = Math.floor(f), k = Math.min(i + 1, anim.values.length - 1), a = f - i;
  return anim.values[i][j] * (1 - a) + anim.values[k][j] * a;
}

function visemeAt(anim, t) {
  let best = '', w = 0.05;
  anim.channels.forEach((c, j) => {
    if (c.startsWith('viseme_') && c !== 'viseme_sil') {
      const v = channelAt(anim, j, t);
      if (v > w) { w = v; best = c.slice(7); }
    }
  });
  return best;
}

function drawCurves(canvas, anim, duration, t) {
  const dpr = window.devicePixelRatio || 1;
  const W = canvas.clientWidth, H = canvas.clientHeight;
  if (canvas.width !== W * dpr || canvas.height !== H * dpr) { canvas.width = W * dpr; canvas.height = H * dpr; }
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, W, H);
  const x = (s) => (s / duration) * W;
  const top = 34, h = H - top - 6;
  g.font = '11px system-ui,sans-serif';
  g.textBaseline = 'top';
  // words on the first row, phonemes on the second: spans with their labels
  [[anim.words, 2, '#ffd166'], [anim.phonemes, 18, '#8ecae6']].forEach(([segs, y, col]) => {
    for (const s of segs || []) {
      g.fillStyle = col + '33';
      g.fillRect(x(s.start), y, Math.max(1, x(s.end) - x(s.start) - 1), 13);
      g.fillStyle = col;
      g.fillText(s.label, x(s.start) + 2, y + 1, Math.max(4, x(s.end) - x(s.start) - 3));
    }
  });
  const n = anim.values.length;
  CURVES.forEach(([name, col], li) => {
    const j = anim.channels.indexOf(name);
    if (j < 0) return;
    g.strokeStyle = col;
    g.lineWidth = 1.3;
    g.beginPath();
    for (let i = 0; i < n; i++) {
      const px = x(i / anim.fps), py = top + h * (1 - Math.min(1, Math.max(0, anim.values[i][j])));
      if (i) g.lineTo(px, py); else g.moveTo(px, py);
    }
    g.stroke();
    g.fillStyle = col;
    g.fillText(name, W - 110, top + 2 + li * 13);
  });
  g.strokeStyle = '#ffffff';
  g.beginPath();
  g.moveTo(x(t), 0);
  g.lineTo(x(t), H);
  g.stroke();
}

/** Where the camera looks: the head (VRM humanoid head, else the face meshes' box), from the front. */
function frame(camera, controls, scene, vrm, faces, facing) {
  scene.updateMatrixWorld(true);
  const box = new THREE.Box3();
  for (const m of faces) box.expandByObject(m, true);
  if (box.isEmpty()) box.setFromObject(scene, true);
  const size = box.getSize(new THREE.Vector3());
  let center = box.getCenter(new THREE.Vector3());
  let extent = Math.max(size.x, size.y, size.z);
  const head = vrm && vrm.humanoid && vrm.humanoid.getNormalizedBoneNode('head');
  if (head && extent > 0.6) {  // a whole body carries the face targets: frame the head bone instead
    center = head.getWorldPosition(new THREE.Vector3()).add(new THREE.Vector3(0, 0.06, 0));
    extent = 0.35;
  }
  const dir = new THREE.Vector3(0, 0, facing === '-z' ? -1 : 1);
  const dist = (extent * 0.8) / Math.tan(THREE.MathUtils.degToRad(camera.fov / 2));
  camera.position.copy(center).addScaledVector(dir, dist);
  camera.near = dist / 100;
  camera.far = dist * 100;
  camera.updateProjectionMatrix();
  controls.target.copy(center);
  controls.update();
}

async function startViewer(data) {
  const ui = buildPage(data.title || 'viseme view');
  const anim = data.animation;
  const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  renderer.outputColorSpace = THREE.SRGBColorSpace;
  ui.stage.appendChild(renderer.domElement);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0x30343c);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x444444, 2.0));
  const sun = new THREE.DirectionalLight(0xffffff, 2.0);
  sun.position.set(0.5, 1, 2);
  scene.add(sun);
  const camera = new THREE.PerspectiveCamera(30, 1, 0.01, 100);
  const controls = new OrbitControls(camera, renderer.domElement);

  const gltf = await loadCharacter(bytesOf(data.model.base64), (msg) => {
    console.warn(msg);
    ui.error.textContent = msg;
  });
  const vrm = gltf.userData.vrm || null;
  if (vrm) vrm.expressionManager = undefined;  // the clip sets the morph weights; three-vrm would reset them
  scene.add(gltf.scene);
  const faces = morphMeshes(gltf.scene);
  const clip = gltf.animations.find((a) => a.name === 'viseme-talk') || gltf.animations[gltf.animations.length - 1];
  const mixer = new THREE.AnimationMixer(gltf.scene);
  if (clip) {
    const action = mixer.clipAction(clip);
    action.setLoop(THREE.LoopOnce, 1);
    action.clampWhenFinished = true;
    action.play();
  }
  const duration = Math.max(anim.duration || 0, clip ? clip.duration : 0, 1e-3);
  ui.scrub.max = duration;

  const audio = data.audio ? new Audio(URL.createObjectURL(new Blob([bytesOf(data.audio.base64)],
    { type: data.audio.mime }))) : null;
  // without sound, a clock stands in for the audio element
  const clock = { t0: 0, offset: 0, playing: false };
  const now = () => (audio ? audio.currentTime
    : clock.playing ? Math.min(duration, clock.offset + (performance.now() - clock.t0) / 1000) : clock.offset);
  const playing = () => (audio ? !audio.paused && !audio.ended : clock.playing && now() < duration);

  function show(t) {
    mixer.setTime(Math.min(t, duration));
    if (vrm) vrm.update(0);
    ui.scrub.value = t;
    ui.time.textContent = `${t.toFixed(2)} / ${duration.toFixed(2)} s`;
    const ph = segmentAt(anim.phonemes, t), wd = segmentAt(anim.words, t);
    ui.phoneme.innerHTML = `phoneme <b>${ph || '–'}</b>`;
    ui.word.innerHTML = `word <b>${wd || '–'}</b> <small>${visemeAt(anim, t)}</small>`;
    ui.phoneme.dataset.value = ph;
    ui.word.dataset.value = wd;
    drawCurves(ui.curves, anim, duration, t);
    renderer.render(scene, camera);
  }
  function resize() {
    const w = ui.stage.clientWidth, h = ui.stage.clientHeight;
    renderer.setSize(w, h, false);
    camera.aspect = w / Math.max(1, h);
    camera.updateProjectionMatrix();
  }
  function seek(t) {
    t = Math.min(Math.max(0, Number(t)), duration);
    if (audio) audio.currentTime = t;
    clock.offset = t;
    clock.t0 = performance.now();
    show(t);
    return t;
  }
  function play() {
    if (now() >= duration - 1e-3) seek(0);
    if (audio) return audio.play();
    clock.t0 = performance.now();
    clock.playing = true;
    return Promise.resolve();
  }
  function pause() {
    if (audio) audio.pause();
    clock.offset = now();
    clock.playing = false;
    show(now());  // the face stops exactly where the sound did
  }
  ui.button.onclick = () => (playing() ? pause() : play());
  ui.scrub.oninput = () => seek(ui.scrub.value);
  const scrubCurves = (e) => seek((e.offsetX / ui.curves.clientWidth) * duration);
  ui.curves.onmousedown = scrubCurves;
  ui.curves.onmousemove = (e) => { if (e.buttons & 1) scrubCurves(e); };
  window.addEventListener('keydown', (e) => { if (e.code === 'Space') { e.preventDefault(); ui.button.onclick(); } });
  window.addEventListener('resize', () => { resize(); show(now()); });
  controls.addEventListener('change', () => renderer.render(scene, camera));

  resize();
  frame(camera, controls, scene, vrm, faces, data.model.facing);
  seek(0);
  renderer.setAnimationLoop(() => {
    if (!playing()) { clock.playing = false; ui.button.textContent = 'Play'; return; }
    ui.button.textContent = 'Pause';
    show(now());
  });

  Object.assign(window.viseme, {
    seek, play, pause, time: now, duration,
    influences: () => morphMeshes(gltf.scene).map((m) => ({
      node: nodeOf(gltf.parser, m), name: m.name, values: Array.from(m.morphTargetInfluences),
    })),
    labels: () => ({ phoneme: ui.phoneme.dataset.value, word: ui.word.dataset.value, viseme: visemeAt(anim, now()) }),
  });
}

// -- what tests and tools use: the same loader on any file ------------------------------------------
async function inspect(base64) {
  const gltf = await parse(bytesOf(base64));
  const vrm = gltf.userData.vrm;
  const vrmas = gltf.userData.vrmAnimations || [];
  return {
    meshes: morphMeshes(gltf.scene).map((m) => ({ name: m.name, targets: m.morphTargetInfluences.length })),
    animations: gltf.animations.map((a) => ({ name: a.name, duration: a.duration, tracks: a.tracks.length })),
    vrm: vrm ? {
      version: vrm.meta && vrm.meta.metaVersion,
      expressions: vrm.expressionManager ? vrm.expressionManager.expressions.map((e) => e.expressionName) : [],
      head: !!(vrm.humanoid && vrm.humanoid.getRawBoneNode('head')),
    } : null,
    vrmAnimations: vrmas.map((a) => ({
      duration: a.duration,
      expressions: [...a.expressionTracks.preset.keys(), ...a.expressionTracks.custom.keys()],
      humanoid: [...a.humanoidTracks.rotation.keys()],
    })),
  };
}

async function playVrma(vrmBase64, vrmaBase64, t) {
  const vrm = (await parse(bytesOf(vrmBase64))).userData.vrm;
  const vrma = (await parse(bytesOf(vrmaBase64))).userData.vrmAnimations[0];
  const clip = createVRMAnimationClip(vrma, vrm);
  const mixer = new THREE.AnimationMixer(vrm.scene);
  mixer.clipAction(clip).play();
  mixer.setTime(t);
  vrm.update(0);
  const expressions = {};
  for (const e of vrm.expressionManager.expressions) expressions[e.expressionName] = e.weight;
  const head = vrm.humanoid.getNormalizedBoneNode('head').quaternion;
  return { tracks: clip.tracks.map((k) => k.name), expressions, head: [head.x, head.y, head.z, head.w] };
}

window.viseme = { inspect, playVrma };
const dataTag = document.getElementById('viseme-data');
if (dataTag) {
  window.viseme.ready = startViewer(JSON.parse(dataTag.textContent)).catch((e) => {
    const box = document.getElementById('vs-error');
    if (box) box.textContent = `Cannot show this character: ${e && e.message ? e.message : e}`;
    throw e;
  });
} else {
  window.viseme.ready = Promise.resolve();
}
