//! Loads ONNX Runtime and the four PP-OCR models once, and runs them.
//!
//! Concurrency choice: `ort` 2.0.0-rc.15's `Session::run` takes `&mut self`,
//! so each model's single session sits behind a `Mutex`. One session per
//! model keeps memory flat and the intra-op thread count predictable (the
//! configured `threads` is what one inference uses); frames in parallel still
//! overlap across models (one in detection while another is in
//! recognition). Replicas scale further by running more processes.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;

use crate::types::{LoadError, ModelConfig};

/// File names inside the models folder (written by `scripts/fetch-models`).
pub const DET_MODEL: &str = "ch_PP-OCRv4_det_infer.onnx";
pub const REC_CH_MODEL: &str = "ch_PP-OCRv4_rec_infer.onnx";
pub const REC_EN_MODEL: &str = "en_PP-OCRv4_rec_infer.onnx";
pub const CLS_MODEL: &str = "ch_ppocr_mobile_v2.0_cls_infer.onnx";
pub const EN_DICT: &str = "en_dict.txt";

/// The process-wide ONNX Runtime environment. `ort` allows one per process
/// and refuses a second even after the first is dropped, so it is created
/// once and kept; a later `load` with a different library path reuses it.
static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn environment(library: &Path) -> Result<ort::environment::Environment, LoadError> {
    let runtime_error = |message: String| LoadError::Runtime {
        path: library.to_path_buf(),
        message,
    };
    if !library.is_file() {
        // Checked here so that a missing library is a clear error rather than
        // whatever dlopen reports (and the same error whether or not an
        // earlier load started the runtime).
        return Err(runtime_error("the library file does not exist".into()));
    }
    let env = ENVIRONMENT.get_or_init(|| {
        ort::init_from(library)
            .map_err(|e| e.to_string())?
            .with_name("anpr-recognizer")
            .build()
            .map_err(|e| e.to_string())
    });
    env.clone().map_err(runtime_error)
}

/// One model's session. Inputs and outputs are plain `f32` buffers with
/// their shapes so that the stages never see `ort` types.
pub struct OnnxModel {
    session: Mutex<Session>,
    path: PathBuf,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("path", &self.path)
            .finish()
    }
}

/// A tensor's shape and data, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorData {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl OnnxModel {
    fn load(
        env: &ort::environment::Environment,
        path: &Path,
        threads: usize,
        level: GraphOptimizationLevel,
    ) -> Result<OnnxModel, LoadError> {
        if !path.is_file() {
            return Err(LoadError::Missing {
                path: path.to_path_buf(),
            });
        }
        let model_error = |message: String| LoadError::Model {
            path: path.to_path_buf(),
            message,
        };
        let session = Session::builder(env)
            .map_err(|e| model_error(e.to_string()))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| model_error(e.to_string()))?
            .with_optimization_level(level)
            .map_err(|e| model_error(e.to_string()))?
            // Spinning threads burn the cores other frames and services need.
            .with_intra_op_spinning(false)
            .map_err(|e| model_error(e.to_string()))?
            .commit_from_file(path)
            .map_err(|e| model_error(e.to_string()))?;
        if session.inputs().len() != 1 || session.outputs().is_empty() {
            return Err(model_error(format!(
                "expected one input and at least one output, found {} and {}",
                session.inputs().len(),
                session.outputs().len()
            )));
        }
        Ok(OnnxModel {
            session: Mutex::new(session),
            path: path.to_path_buf(),
        })
    }

    /// Runs the model on one input and returns its first output.
    pub fn run(&self, input: TensorData) -> Result<TensorData, String> {
        let shape: Vec<i64> = input.shape.iter().map(|&d| d as i64).collect();
        let tensor = Tensor::from_array((shape, input.data)).map_err(|e| e.to_string())?;
        // A poisoned lock only means another inference panicked; the session
        // itself holds no state between runs.
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let outputs = session
            .run(ort::inputs![tensor])
            .map_err(|e| e.to_string())?;
        let (shape, data) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
        Ok(TensorData {
            shape,
            data: data.to_vec(),
        })
    }

    /// The declared shape of the model's input (-1 for a dynamic dimension).
    pub fn input_shape(&self) -> Option<Vec<i64>> {
        let session = self
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let shape = session.inputs().first()?.dtype().tensor_shape()?;
        Some(shape.iter().copied().collect())
    }

    /// A custom metadata entry of the model.
    fn metadata(&self, key: &str) -> Option<String> {
        let session = self
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        session.metadata().ok().and_then(|m| m.custom(key))
    }
}

/// Every model the pipeline uses, with the recognisers' character lists.
#[derive(Debug)]
pub struct Models {
    pub detector: OnnxModel,
    pub rec_ch: OnnxModel,
    pub rec_en: OnnxModel,
    pub orientation: OnnxModel,
    /// Character of each class of the Chinese/Latin recogniser; class 0 is
    /// the CTC blank (`None`).
    pub ch_classes: Vec<Option<char>>,
    /// Same for the English recogniser.
    pub en_classes: Vec<Option<char>>,
    /// The project's plate recogniser, when `plate_ocr.onnx` is in the
    /// models folder (`scripts/fetch-models` copies the committed one).
    pub plate: Option<OnnxModel>,
}

impl Models {
    pub fn load(config: &ModelConfig) -> Result<Models, LoadError> {
        let dir = &config.models_dir;
        // Check every file first so that a missing model is reported before
        // the (slower) runtime start.
        for name in [DET_MODEL, REC_CH_MODEL, REC_EN_MODEL, CLS_MODEL, EN_DICT] {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(LoadError::Missing { path });
            }
        }
        let library = config
            .ort_library
            .clone()
            .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from))
            .unwrap_or_else(|| dir.join("lib").join("libonnxruntime.so"));
        let env = environment(&library)?;
        let threads = config.threads.max(1);
        // Levels measured per model: All is fastest for the detector and the
        // Chinese recogniser but made the English one twice as slow.
        let detector = OnnxModel::load(
            &env,
            &dir.join(DET_MODEL),
            threads,
            GraphOptimizationLevel::All,
        )?;
        let rec_ch = OnnxModel::load(
            &env,
            &dir.join(REC_CH_MODEL),
            threads,
            GraphOptimizationLevel::All,
        )?;
        let rec_en = OnnxModel::load(
            &env,
            &dir.join(REC_EN_MODEL),
            threads,
            GraphOptimizationLevel::Level2,
        )?;
        let orientation = OnnxModel::load(
            &env,
            &dir.join(CLS_MODEL),
            threads,
            GraphOptimizationLevel::All,
        )?;
        let ch_path = dir.join(REC_CH_MODEL);
        let ch_list = rec_ch
            .metadata("character")
            .ok_or_else(|| LoadError::Model {
                path: ch_path.clone(),
                message: "no `character` list in the model metadata".into(),
            })?;
        let ch_classes = ch_classes(&ch_list);
        let en_path = dir.join(EN_DICT);
        let en_text = std::fs::read_to_string(&en_path).map_err(|e| LoadError::Model {
            path: en_path.clone(),
            message: e.to_string(),
        })?;
        let en_classes = en_classes(&en_text).map_err(|message| LoadError::Model {
            path: en_path,
            message,
        })?;
        let plate_path = dir.join(crate::plate_ocr::PLATE_OCR_MODEL);
        let plate = if plate_path.is_file() {
            let model = OnnxModel::load(&env, &plate_path, threads, GraphOptimizationLevel::All)?;
            // A model trained for another input size would read garbage.
            match model.input_shape() {
                Some(shape) if crate::plate_ocr::accepts_input(&shape) => Some(model),
                other => {
                    return Err(LoadError::Model {
                        path: plate_path,
                        message: format!(
                            "input shape {other:?} is not [batch, 1, {}, {}] as this recognizer feeds it",
                            crate::plate_ocr::HEIGHT,
                            crate::plate_ocr::WIDTH
                        ),
                    })
                }
            }
        } else {
            None
        };
        Ok(Models {
            detector,
            rec_ch,
            rec_en,
            orientation,
            ch_classes,
            en_classes,
            plate,
        })
    }
}

/// Classes of the Chinese/Latin recogniser from its metadata list (one entry
/// per line): blank, the entries, then a space (PaddleOCR appends one).
pub fn ch_classes(list: &str) -> Vec<Option<char>> {
    let mut classes = vec![None];
    classes.extend(list.split('\n').map(|line| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        // Multi-character entries never are plate characters: keep the slot
        // (indices must line up) but mark it unusable.
        let mut chars = line.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Some(c),
            _ => Some('\u{FFFD}'),
        }
    }));
    classes.push(Some(' '));
    classes
}

/// Classes of the English recogniser: blank, the 95 lines of `en_dict.txt`
/// (CRLF line endings; the last line is a single space), then a second
/// space: 97 in all.
pub fn en_classes(text: &str) -> Result<Vec<Option<char>>, String> {
    let mut classes = vec![None];
    // The file ends with a bare newline after the last (space) line.
    let body = text.strip_suffix('\n').unwrap_or(text);
    for (n, line) in body.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut chars = line.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => classes.push(Some(c)),
            _ => return Err(format!("line {} is not a single character", n + 1)),
        }
    }
    if classes.len() != 96 {
        return Err(format!(
            "expected 95 characters, found {}",
            classes.len() - 1
        ));
    }
    classes.push(Some(' '));
    Ok(classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_dictionary_gives_97_classes() {
        let mut text = String::new();
        for c in (0x21u8..=0x7e).map(char::from) {
            text.push(c);
            text.push_str("\r\n");
        }
        text.push_str(" \n");
        let classes = en_classes(&text).unwrap();
        assert_eq!(classes.len(), 97);
        assert_eq!(classes[0], None);
        assert_eq!(classes[1], Some('!'));
        assert_eq!(classes[95], Some(' '));
        assert_eq!(classes[96], Some(' '));
        assert!(en_classes("a\r\nbc").is_err());
    }

    #[test]
    fn chinese_list_is_offset_by_the_blank() {
        let classes = ch_classes("A\nB\n12");
        assert_eq!(
            classes,
            vec![None, Some('A'), Some('B'), Some('\u{FFFD}'), Some(' ')]
        );
    }

    fn real_models() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models"))
    }

    /// A models folder linking the real files, with `broken` replaced by
    /// garbage.
    fn models_with_broken(name: &str, broken: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("anpr-recognizer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for file in [DET_MODEL, REC_CH_MODEL, REC_EN_MODEL, CLS_MODEL, EN_DICT] {
            if file == broken {
                std::fs::write(dir.join(file), b"not an onnx model").unwrap();
            } else {
                std::os::unix::fs::symlink(real_models().join(file), dir.join(file)).unwrap();
            }
        }
        dir
    }

    #[test]
    fn a_corrupt_model_names_the_file_and_the_fix() {
        let dir = models_with_broken("corrupt", REC_EN_MODEL);
        let config = ModelConfig {
            models_dir: dir.clone(),
            ort_library: Some(real_models().join("lib").join("libonnxruntime.so")),
            ..ModelConfig::default()
        };
        let err = Models::load(&config).unwrap_err();
        assert!(matches!(err, LoadError::Model { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(REC_EN_MODEL), "{text}");
        assert!(text.contains("scripts/fetch-models"), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_runtime_names_the_library_and_the_fix() {
        let config = ModelConfig {
            models_dir: real_models(),
            ort_library: Some(PathBuf::from("/nonexistent/libonnxruntime.so")),
            ..ModelConfig::default()
        };
        let err = Models::load(&config).unwrap_err();
        assert!(matches!(err, LoadError::Runtime { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("/nonexistent/libonnxruntime.so"), "{text}");
        assert!(text.contains("scripts/fetch-models"), "{text}");
    }

    #[test]
    fn missing_models_name_the_file_and_the_fix() {
        let dir = std::env::temp_dir().join("anpr-recognizer-no-models");
        let config = ModelConfig {
            models_dir: dir.clone(),
            ..ModelConfig::default()
        };
        let err = Models::load(&config).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(DET_MODEL), "{text}");
        assert!(text.contains("scripts/fetch-models"), "{text}");
    }
}
