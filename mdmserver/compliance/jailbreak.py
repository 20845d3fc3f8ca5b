"""Bundle ids of jailbreak package managers, loaders and tools. Any of them installed is a
strong sign the device's security model is broken, whatever SecurityInfo says.

"verified": the id appears with that meaning in public source code or tool listings we checked
(jailbreak detectors, tweak sources, frida process listings). "unverified": from a single
listing only; kept because a false positive here is cheap to override in compliance.toml.
"""

from __future__ import annotations

JAILBREAK_APPS: dict[str, str] = {
    # verified
    "com.saurik.Cydia": "Cydia (package manager)",
    "org.coolstar.SileoStore": "Sileo (package manager)",
    "xyz.willy.Zebra": "Zebra (package manager)",
    "science.xnu.undecimus": "unc0ver (jailbreak)",
    "kjc.loader": "checkra1n loader (jailbreak)",
    "com.opa334.Dopamine": "Dopamine (jailbreak)",
    "com.samiiau.loader": "palera1n loader (jailbreak)",
    "com.llsc12.palera1nLoader": "palera1n loader (jailbreak)",
    "org.coolstar.electra": "Electra (jailbreak)",
    "com.tigisoftware.Filza": "Filza (root file manager)",
    "com.opa334.TrollStore": "TrollStore (unsigned app installer)",
    # unverified
    "org.coolstar.odyssey": "Odyssey (jailbreak, unverified id)",
    "org.taurine.jailbreak": "Taurine (jailbreak, unverified id)",
    "me.apptapp.installer": "Installer (package manager, unverified id)",
}
