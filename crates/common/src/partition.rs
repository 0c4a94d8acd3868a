//! Static partitioning of cameras over replicas.
//!
//! Some work must happen for a camera in exactly one replica: its tracks in
//! the analytic (two replicas would each see half the reads and publish two
//! half-passages), its RTSP session in ingest (two would publish every frame
//! twice). The analytic's case as the example: Every replica
//! subscribes to all reads (`anpr.v1.reads.>`) and keeps only the cameras
//! whose FNV-1a 64-bit hash of the camera id, modulo the number of replicas,
//! is its own index; the others are counted and dropped. The hash is fixed by
//! its definition, so every replica and every build agrees on it (std's
//! hasher is randomly seeded per process and would not).
//!
//! On Kubernetes, run a StatefulSet and derive `--partition` from the pod's
//! ordinal (`ANPR_PARTITION`), with `--partitions` (`ANPR_PARTITIONS`) equal
//! to the replica count. Changing the count moves cameras between replicas;
//! their open tracks restart on the new owner.

/// This replica's share of the cameras.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    index: u32,
    count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    #[error("--partitions must be at least 1")]
    NoPartitions,
    #[error("--partition must be below --partitions ({count}), got {index}")]
    OutOfRange { index: u32, count: u32 },
}

impl Partition {
    pub fn new(index: u32, count: u32) -> Result<Self, PartitionError> {
        if count == 0 {
            return Err(PartitionError::NoPartitions);
        }
        if index >= count {
            return Err(PartitionError::OutOfRange { index, count });
        }
        Ok(Partition { index, count })
    }

    /// One replica handling every camera.
    pub fn single() -> Self {
        Partition { index: 0, count: 1 }
    }

    /// Whether this replica handles `camera_id`.
    pub fn owns(&self, camera_id: &str) -> bool {
        fnv1a_64(camera_id.as_bytes()) % u64::from(self.count) == u64::from(self.index)
    }
}

/// FNV-1a, 64 bits.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_values() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn every_camera_has_exactly_one_owner() {
        let replicas: Vec<_> = (0..3)
            .map(|i| Partition::new(i, 3).expect("valid"))
            .collect();
        let mut per_replica = [0; 3];
        for n in 0..300 {
            let camera = format!("cam-{n}");
            let owners: Vec<_> = replicas.iter().filter(|p| p.owns(&camera)).collect();
            assert_eq!(owners.len(), 1, "{camera}");
            per_replica[owners[0].index as usize] += 1;
        }
        // Spread over all replicas, not piled on one.
        assert!(per_replica.iter().all(|&n| n > 50), "{per_replica:?}");
        assert!(Partition::single().owns("anything"));
        assert_eq!(Partition::new(0, 0), Err(PartitionError::NoPartitions));
        assert_eq!(
            Partition::new(3, 3),
            Err(PartitionError::OutOfRange { index: 3, count: 3 })
        );
    }
}
