//! `<data_dir>/node.json`: which node and cluster a data directory belongs to.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Identity stored in the data dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMeta {
    pub node_id: i32,
    pub cluster_id: String,
    /// The node joined a multi-node cluster under `cluster_id` (which it then may not leave).
    #[serde(default)]
    pub joined: bool,
}

/// Records that the node in `data_dir` joined cluster `cluster_id`.
pub fn record_joined(data_dir: &Path, node_id: i32, cluster_id: &str) -> anyhow::Result<NodeMeta> {
    let meta = NodeMeta {
        node_id,
        cluster_id: cluster_id.to_string(),
        joined: true,
    };
    super::write_file_durably(&data_dir.join("node.json"), &serde_json::to_vec_pretty(&meta)?)?;
    Ok(meta)
}

/// Reads `node.json`, creating it (with a new cluster id) on first start. A data dir that
/// belongs to another node is refused with a clear error.
pub fn load_or_create(data_dir: &Path, node_id: i32) -> anyhow::Result<NodeMeta> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join("node.json");
    match std::fs::read(&path) {
        Ok(data) => {
            let meta: NodeMeta = serde_json::from_slice(&data)
                .map_err(|e| anyhow::anyhow!("{} is not a valid node file: {e}", path.display()))?;
            anyhow::ensure!(
                meta.node_id == node_id,
                "data dir {} belongs to node {} of cluster {}, but this is node {node_id}; refusing to start",
                data_dir.display(),
                meta.node_id,
                meta.cluster_id
            );
            Ok(meta)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let meta = NodeMeta {
                node_id,
                cluster_id: uuid::Uuid::new_v4().simple().to_string()[..22].to_string(),
                joined: false,
            };
            super::write_file_durably(&path, &serde_json::to_vec_pretty(&meta)?)?;
            Ok(meta)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn identity_persists_and_mismatch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = super::load_or_create(dir.path(), 1).unwrap();
        assert_eq!(super::load_or_create(dir.path(), 1).unwrap(), a);
        let err = super::load_or_create(dir.path(), 2).unwrap_err().to_string();
        assert!(err.contains("belongs to node 1"), "{err}");
    }
}
