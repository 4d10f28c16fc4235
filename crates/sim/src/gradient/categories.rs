//! Gradient's service category and subcategory enums (reference §6.2) as the simulator models
//! them: the vendor API refuses anything else, case-sensitively.
//!
//! Why a second copy of the daemon's `mpsync::gradient::CATEGORIES`: the simulator is a model
//! of Gradient and knows nothing of the daemon, and the daemon's validation must not be
//! defined by its own test double (when the two disagree, the reference decides). A test in
//! the daemon crate (`model::gradient_categories`) asserts both lists are identical, so they cannot
//! drift apart.

/// Category enum values (§6.2).
pub const CATEGORIES: [&str; 7] = [
    "security",
    "backup",
    "productivity",
    "infrastructure",
    "service delivery",
    "consulting",
    "other",
];

/// Subcategory enum values (§6.2; "priviledged" is the real spelling).
pub const SUBCATEGORIES: [&str; 46] = [
    "endpoint detection and response (EDR)",
    "email security",
    "virtual private network services (VPN)",
    "DNS filtering",
    "dark web monitoring",
    "password management",
    "single sign on (SSO)",
    "priviledged access and identity management (PAM/PIM)",
    "security information and event management (SIEM)",
    "mobile device management (MDM)",
    "application security",
    "mobile application management (MAM)",
    "multi factor authentication (MFA)",
    "cloud backup",
    "local backup",
    "desktop backup",
    "data archiving",
    "physical offsite storage",
    "business continuity",
    "hosted email",
    "video conferencing",
    "voice over IP services (VOIP)",
    "line of business application support",
    "unified communications as a service (UCaaS)",
    "customer relationship management",
    "cloud storage",
    "website hosting",
    "hardware as a service (HaaS)",
    "managed print services",
    "virtual desktop infrastructure (VDI)",
    "virtual server hosting",
    "infrastructure as a service (IaaS)",
    "end user support",
    "server management and support",
    "network management and support",
    "printer management and support",
    "desktop management and support",
    "hosted security operations centre (SOC)",
    "software development",
    "penetration testing",
    "project services",
    "governance and compliance",
    "business intelligence services / analytics",
    "phishing simulation",
    "privacy and security awareness training",
    "other",
];
