//! Where the embedded store's files live: the narrow disk interface the driver serves the
//! engine's I/O requests against (DESIGN §2, STYLE 5).
//!
//! * [`MemBackend`] — files in wasm memory. Stores are kept by name for the life of the wasm
//!   instance, so closing and reopening a name finds its data (a page reload loses it).
//! * [`JsBackend`] — files behind a JavaScript object (the OPFS worker's pool of synchronous
//!   access handles, `js/opfs-pool.js`, or any object with the same methods: the Node tests
//!   use a `Map`). Every call is synchronous. The methods, with `path` = `<store name>/<file>`:
//!
//!   ```text
//!   list(dir) -> string[]            names (without the dir) of the files in the store
//!   read(path, offset, len) -> Uint8Array   at most len bytes from offset (short at the end)
//!   size(path) -> number
//!   append(path, bytes)              creates the file if needed
//!   sync(path)                       makes the file's bytes durable (OPFS: handle.flush())
//!   truncate(path, len)
//!   remove(path)                     a missing file is not an error
//!   writeFile(path, bytes)           creates or replaces the file, then syncs it
//!   ```
//!   A method that throws fails the request: an `Error` whose `code` is `ENOENT` becomes
//!   "not found", `ENOSPC` "no space", anything else an I/O error with the message.
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use strata_engine::lsm::io::{FileName, IoError, IoRequest, IoResult};

/// A store's files. Requests for one file are carried out in the order given.
pub trait Backend {
    /// Carries out one of the engine's requests.
    fn execute(&mut self, req: IoRequest) -> IoResult;
    /// Creates (or replaces) `file` with `data` and makes it durable (a job's output table).
    fn write_file(&mut self, file: FileName, data: &[u8]) -> Result<(), IoError>;
    /// `"memory"` or `"js"`.
    fn kind(&self) -> &'static str;
}

type Files = Rc<RefCell<BTreeMap<FileName, Vec<u8>>>>;

thread_local! {
    /// Memory stores by name: a reopen in the same wasm instance finds the files.
    static MEMORY: RefCell<HashMap<String, Files>> = RefCell::new(HashMap::new());
}

/// Files in memory, shared by every open of the same name in this instance.
#[derive(Debug)]
pub struct MemBackend {
    files: Files,
}

impl MemBackend {
    /// The memory store called `name` (empty the first time).
    pub fn named(name: &str) -> MemBackend {
        let files = MEMORY.with(|m| m.borrow_mut().entry(name.to_string()).or_default().clone());
        MemBackend { files }
    }

    /// A store nobody else can reach (benchmarks).
    pub fn private() -> MemBackend {
        MemBackend { files: Files::default() }
    }

    /// Forgets the memory store called `name` (its files go once no open store uses them).
    pub fn destroy(name: &str) -> bool {
        MEMORY.with(|m| m.borrow_mut().remove(name).is_some())
    }

    /// Total bytes held.
    pub fn bytes(&self) -> usize {
        self.files.borrow().values().map(Vec::len).sum()
    }
}

impl Backend for MemBackend {
    fn execute(&mut self, req: IoRequest) -> IoResult {
        let mut files = self.files.borrow_mut();
        match req {
            IoRequest::List => IoResult::Listed(files.keys().copied().collect()),
            IoRequest::Read { file, offset, len } => match files.get(&file) {
                Some(f) => {
                    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(f.len());
                    let end = start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX)).min(f.len());
                    IoResult::Data(f[start..end].to_vec())
                }
                None => IoResult::Failed(IoError::NotFound),
            },
            IoRequest::ReadAll { file } => match files.get(&file) {
                Some(f) => IoResult::Data(f.clone()),
                None => IoResult::Failed(IoError::NotFound),
            },
            IoRequest::Append { file, data } => {
                let f = files.entry(file).or_default();
                if f.is_empty() {
                    *f = data;
                } else {
                    f.extend_from_slice(&data);
                }
                IoResult::Done
            }
            IoRequest::Sync { file } => {
                if files.contains_key(&file) {
                    IoResult::Done
                } else {
                    IoResult::Failed(IoError::NotFound)
                }
            }
            IoRequest::Truncate { file, len } => match files.get_mut(&file) {
                Some(f) => {
                    f.truncate(usize::try_from(len).unwrap_or(usize::MAX));
                    IoResult::Done
                }
                None => IoResult::Failed(IoError::NotFound),
            },
            IoRequest::Delete { file } => {
                files.remove(&file);
                IoResult::Done
            }
        }
    }

    fn write_file(&mut self, file: FileName, data: &[u8]) -> Result<(), IoError> {
        self.files.borrow_mut().insert(file, data.to_vec());
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

pub use js::JsBackend;

mod js {
    use super::Backend;
    use strata_engine::lsm::io::{FileName, IoError, IoRequest, IoResult};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    #[wasm_bindgen]
    extern "C" {
        /// The storage object handed to `Db.open` (see the module docs).
        pub type JsStorage;
        #[wasm_bindgen(method, catch)]
        fn list(this: &JsStorage, dir: &str) -> Result<Vec<String>, JsValue>;
        #[wasm_bindgen(method, catch)]
        fn read(this: &JsStorage, path: &str, offset: f64, len: f64) -> Result<Vec<u8>, JsValue>;
        #[wasm_bindgen(method, catch)]
        fn size(this: &JsStorage, path: &str) -> Result<f64, JsValue>;
        #[wasm_bindgen(method, catch)]
        fn append(this: &JsStorage, path: &str, data: &[u8]) -> Result<(), JsValue>;
        #[wasm_bindgen(method, catch)]
        fn sync(this: &JsStorage, path: &str) -> Result<(), JsValue>;
        #[wasm_bindgen(method, catch)]
        fn truncate(this: &JsStorage, path: &str, len: f64) -> Result<(), JsValue>;
        #[wasm_bindgen(method, catch)]
        fn remove(this: &JsStorage, path: &str) -> Result<(), JsValue>;
        #[wasm_bindgen(method, catch, js_name = writeFile)]
        fn write_file(this: &JsStorage, path: &str, data: &[u8]) -> Result<(), JsValue>;
    }

    /// Files behind a JavaScript storage object, under the directory `<name>/`.
    pub struct JsBackend {
        storage: JsStorage,
        dir: String,
    }

    impl std::fmt::Debug for JsBackend {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("JsBackend").field("dir", &self.dir).finish_non_exhaustive()
        }
    }

    impl JsBackend {
        /// The store `name` in `storage` (any JS object; its methods are checked when called).
        pub fn new(storage: JsValue, name: &str) -> JsBackend {
            JsBackend { storage: storage.unchecked_into(), dir: name.to_string() }
        }

        fn path(&self, file: FileName) -> String {
            format!("{}/{file}", self.dir)
        }
    }

    /// A thrown JS value as an I/O error (`code` ENOENT / ENOSPC are recognised).
    fn io_error(e: &JsValue) -> IoError {
        let code = js_sys::Reflect::get(e, &JsValue::from_str("code")).ok().and_then(|c| c.as_string());
        match code.as_deref() {
            Some("ENOENT") => IoError::NotFound,
            Some("ENOSPC") => IoError::NoSpace,
            _ => {
                let msg = e
                    .dyn_ref::<js_sys::Error>()
                    .map(|e| String::from(e.message()))
                    .or_else(|| e.as_string())
                    .unwrap_or_else(|| format!("{e:?}"));
                IoError::Other(format!("storage: {msg}"))
            }
        }
    }

    fn done(r: Result<(), JsValue>) -> IoResult {
        match r {
            Ok(()) => IoResult::Done,
            Err(e) => IoResult::Failed(io_error(&e)),
        }
    }

    impl Backend for JsBackend {
        fn execute(&mut self, req: IoRequest) -> IoResult {
            let s = &self.storage;
            match req {
                IoRequest::List => match s.list(&self.dir) {
                    // Names the engine does not know (a LOCK file, a stray upload) are skipped.
                    Ok(names) => IoResult::Listed(names.iter().filter_map(|n| FileName::parse(n)).collect()),
                    Err(e) => IoResult::Failed(io_error(&e)),
                },
                IoRequest::Read { file, offset, len } => match s.read(&self.path(file), offset as f64, len as f64) {
                    Ok(d) => IoResult::Data(d),
                    Err(e) => IoResult::Failed(io_error(&e)),
                },
                IoRequest::ReadAll { file } => {
                    let path = self.path(file);
                    match s.size(&path).and_then(|n| s.read(&path, 0.0, n)) {
                        Ok(d) => IoResult::Data(d),
                        Err(e) => IoResult::Failed(io_error(&e)),
                    }
                }
                IoRequest::Append { file, data } => done(s.append(&self.path(file), &data)),
                IoRequest::Sync { file } => done(s.sync(&self.path(file))),
                IoRequest::Truncate { file, len } => done(s.truncate(&self.path(file), len as f64)),
                IoRequest::Delete { file } => done(s.remove(&self.path(file))),
            }
        }

        fn write_file(&mut self, file: FileName, data: &[u8]) -> Result<(), IoError> {
            self.storage.write_file(&self.path(file), data).map_err(|e| io_error(&e))
        }

        fn kind(&self) -> &'static str {
            "js"
        }
    }
}
