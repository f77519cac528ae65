// The demo's entry point: loads the wasm engine, then hands the page to the app.
import init, { version } from '/pkg/strata_wasm.js';

const status = document.getElementById('status');

async function boot() {
  try {
    await init();
  } catch (e) {
    status.textContent = 'The wasm engine is not built or failed to load: run `bash web-demo/run.sh`. (' + e.message + ')';
    status.classList.add('error');
    throw e;
  }
  const v = version();
  document.getElementById('engine-version').textContent = 'engine ' + v;
  status.textContent = '';
  window.demo = { ready: true, version: v };
}

boot();
