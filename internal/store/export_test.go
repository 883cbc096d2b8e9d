package store

// MigrateTo migrates up to a version (tests of the upgrade from older schemas).
var MigrateTo = migrateTo
