//! Reading a stopped or running device's household secret epochs from its data
//! directory, as an attacker holding that device's disk would.

use std::path::Path;

use hearth_core::epochs::{Epoch, Epochs};
use hearth_core::secrets::DeviceSecrets;

/// Every household secret epoch the device in `data_dir` holds, the current one first:
/// the sealed epochs file if there is one, else the secret in its identity file (as
/// epoch 0). The identity file must be unprotected.
pub fn held_epochs(data_dir: &Path) -> anyhow::Result<Vec<Epoch>> {
    let bytes = std::fs::read(data_dir.join("identity.age"))?;
    let secrets = DeviceSecrets::from_file_bytes(&bytes, None)?;
    let mut held = Vec::new();
    if let Ok(sealed) = std::fs::read(data_dir.join(hearthd::epochs::HOUSEHOLD_SECRET_FILE)) {
        let plain = hearth_core::envelope::open(secrets.age_identity(), &sealed)?;
        held.extend(Epochs::decode(&plain)?.all().iter().cloned());
    }
    if let Some(first) = secrets.household_secret() {
        held.push(Epoch::new(0, *first));
    }
    Ok(held)
}
