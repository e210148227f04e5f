BEGIN TRANSACTION;
CREATE TABLE disputes (
    dispute_id INTEGER PRIMARY KEY,
    pair_key TEXT NOT NULL UNIQUE,
    source_l TEXT NOT NULL,
    record_id_l TEXT NOT NULL,
    source_r TEXT NOT NULL,
    record_id_r TEXT NOT NULL,
    reasons TEXT NOT NULL,
    priority REAL NOT NULL,
    match_probability REAL,
    facility_type_l TEXT,
    facility_type_r TEXT,
    left_record TEXT NOT NULL,
    right_record TEXT NOT NULL,
    explanation TEXT NOT NULL,
    cluster TEXT NOT NULL,
    build_id TEXT,
    first_raised_at TEXT NOT NULL,
    last_raised_at TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    reopened_after INTEGER NOT NULL DEFAULT 0
);
INSERT INTO "disputes" VALUES(1,'[["cdph","140000004"],["hcai","106010739"]]','cdph','140000004','hcai','106010739','[{"kind": "uncertain"}]',0.76,0.62,'GENERAL ACUTE CARE HOSPITAL','General Acute Care Hospital','{"source": "cdph", "record_id": "140000004", "entity_id": "E2", "name": "ALTA BATES SUMMIT MEDICAL CENTER-ALTA BATES CAMPUS", "address": "2450 ASHBY AVENUE", "city": "BERKELEY", "state": "CA", "zip": "94705", "county": "ALAMEDA", "phone": "(510) 555-0100", "facility_type": "GENERAL ACUTE CARE HOSPITAL", "latitude": 37.8, "longitude": -122.2, "other_names": "", "identifiers": {}, "match_probability": null, "method": "fuzzy"}','{"source": "hcai", "record_id": "106010739", "entity_id": "E2", "name": "ALTA BATES SUMMIT MED CTR - ALTA BATES CAMPUS", "address": "2450 Ashby Ave", "city": "Berkeley", "state": "CA", "zip": "94705", "county": "ALAMEDA", "phone": "(510) 555-0100", "facility_type": "General Acute Care Hospital", "latitude": 37.8, "longitude": -122.2, "other_names": "", "identifiers": {}, "match_probability": null, "method": "fuzzy"}','{"link": {"link_id": 2, "status": "linked", "method": "fuzzy", "match_probability": 0.62, "match_weight": 2.4, "entity_id": "E2"}, "fields": {"name": {"level": "fuzzy", "left": "ALTA BATES SUMMIT MEDICAL CENTER-ALTA BATES CAMPUS", "right": "ALTA BATES SUMMIT MED CTR - ALTA BATES CAMPUS", "weight": -0.14}, "address": {"level": "fuzzy", "left": "2450 ASHBY AVENUE", "right": "2450 Ashby Ave", "weight": -0.14}, "city": {"level": "exact", "left": "BERKELEY", "right": "Berkeley", "weight": 2.5}, "zip": {"level": "exact", "left": "94705", "right": "94705", "weight": 2.0}, "facility_type": {"level": "exact", "left": "GENERAL ACUTE CARE HOSPITAL", "right": "General Acute Care Hospital", "weight": 1.5}}, "extra": {}}','[]','test-build-1','2026-12-07T11:57:30.939817Z','2026-12-07T11:57:30.939817Z',1,0);
INSERT INTO "disputes" VALUES(2,'[["cdph","140000006"],["hcai","106010844"]]','cdph','140000006','hcai','106010844','[{"kind": "uncertain"}]',0.7,0.35,'GENERAL ACUTE CARE HOSPITAL','Acute Psychiatric Hospital','{"source": "cdph", "record_id": "140000006", "entity_id": "E3", "name": "ALTA BATES SUMMIT MEDICAL CENTER-HERRICK CAMPUS", "address": "2001 DWIGHT WAY", "city": "BERKELEY", "state": "CA", "zip": "94704", "county": "ALAMEDA", "phone": "(510) 555-0100", "facility_type": "GENERAL ACUTE CARE HOSPITAL", "latitude": 37.8, "longitude": -122.2, "other_names": "", "identifiers": {}, "match_probability": null, "method": "fuzzy"}','{"source": "hcai", "record_id": "106010844", "entity_id": "E4", "name": "HERRICK HOSPITAL", "address": "2001 Dwight Way", "city": "Berkeley", "state": "CA", "zip": "94704", "county": "ALAMEDA", "phone": "(510) 555-0100", "facility_type": "Acute Psychiatric Hospital", "latitude": 37.8, "longitude": -122.2, "other_names": "", "identifiers": {}, "match_probability": null, "method": "fuzzy"}','{"link": {"link_id": 3, "status": "below_threshold", "method": "fuzzy", "match_probability": 0.35, "match_weight": -3.0, "entity_id": null}, "fields": {"name": {"level": "fuzzy", "left": "ALTA BATES SUMMIT MEDICAL CENTER-HERRICK CAMPUS", "right": "HERRICK HOSPITAL", "weight": -0.95}, "address": {"level": "exact", "left": "2001 DWIGHT WAY", "right": "2001 Dwight Way", "weight": 3.0}, "city": {"level": "exact", "left": "BERKELEY", "right": "Berkeley", "weight": 2.5}, "zip": {"level": "exact", "left": "94704", "right": "94704", "weight": 2.0}, "facility_type": {"level": "fuzzy", "left": "GENERAL ACUTE CARE HOSPITAL", "right": "Acute Psychiatric Hospital", "weight": -0.95}}, "extra": {}}','[]','test-build-1','2026-12-07T11:57:30.939817Z','2026-12-07T11:57:30.939817Z',1,0);
INSERT INTO "disputes" VALUES(3,'[["hcai","106014050"],["hcai","106014051"]]','hcai','106014050','hcai','106014051','[{"kind": "one_per_source"}, {"kind": "uncertain"}]',1.38,0.81,'Home Health Agency','Home Health Agency','{"source": "hcai", "record_id": "106014050", "entity_id": "E7", "name": "VALLEY HOME HEALTH", "address": "6851 Van Nuys Blvd", "city": "Van Nuys", "state": "CA", "zip": "91405", "county": "ALAMEDA", "phone": "(510) 555-0100", "facility_type": "Home Health Agency", "latitude": 37.8, "longitude": -122.2, "other_names": "", "identifiers": {}, "match_probability": null, "method": "fuzzy"}','{"source": "hcai", "record_id": "106014051", "entity_id": "E8", "name": "VALLEY HOME HEALTH CARE", "address": "6851 Van Nuys Blvd", "city": "Van Nuys", "state": "CA", "zip": "91405", "county": "ALAMEDA", "phone": "(510) 555-0100", "facility_type": "Home Health Agency", "latitude": 37.8, "longitude": -122.2, "other_names": "", "identifiers": {}, "match_probability": null, "method": "fuzzy"}','{"link": {"link_id": 5, "status": "cut", "method": "fuzzy", "match_probability": 0.81, "match_weight": 6.2, "entity_id": null}, "fields": {"name": {"level": "fuzzy", "left": "VALLEY HOME HEALTH", "right": "VALLEY HOME HEALTH CARE", "weight": 0.43}, "address": {"level": "exact", "left": "6851 Van Nuys Blvd", "right": "6851 Van Nuys Blvd", "weight": 3.0}, "city": {"level": "exact", "left": "Van Nuys", "right": "Van Nuys", "weight": 2.5}, "zip": {"level": "exact", "left": "91405", "right": "91405", "weight": 2.0}, "facility_type": {"level": "exact", "left": "Home Health Agency", "right": "Home Health Agency", "weight": 1.5}}, "extra": {}}','[]','test-build-1','2026-12-07T11:57:30.939817Z','2026-12-07T11:57:30.939817Z',1,0);
INSERT INTO "disputes" VALUES(4,'[["cdph","900002"],["hcai","900001"]]','cdph','900002','hcai','900001','[{"kind": "uncertain"}, {"kind": "large_cluster", "entity_id": "E9", "member_count": 7}]',8.99999999999999911182e-01,0.55,'CHRONIC DIALYSIS CLINIC','CHRONIC DIALYSIS CLINIC','{"source": "cdph", "record_id": "900002", "entity_id": "E9", "name": "DAVITA DIALYSIS UNIT 2", "address": "100 MAIN ST", "city": "FRESNO", "state": "CA", "zip": "93701", "county": "ALAMEDA", "phone": "(510) 555-0100", "facility_type": "CHRONIC DIALYSIS CLINIC", "latitude": 37.8, "longitude": -122.2, "other_names": "", "identifiers": {}, "match_probability": null, "method": "fuzzy"}','{"source": "hcai", "record_id": "900001", "entity_id": "E9", "name": "DAVITA DIALYSIS UNIT 1", "address": "100 MAIN ST", "city": "FRESNO", "state": "CA", "zip": "93701", "county": "ALAMEDA", "phone": "(510) 555-0100", "facility_type": "CHRONIC DIALYSIS CLINIC", "latitude": 37.8, "longitude": -122.2, "other_names": "", "identifiers": {}, "match_probability": null, "method": "fuzzy"}','{"link": {"link_id": 7, "status": "linked", "method": "fuzzy", "match_probability": 0.55, "match_weight": 1.0, "entity_id": "E9"}, "fields": {"name": {"level": "fuzzy", "left": "DAVITA DIALYSIS UNIT 2", "right": "DAVITA DIALYSIS UNIT 1", "weight": -0.35}, "address": {"level": "exact", "left": "100 MAIN ST", "right": "100 MAIN ST", "weight": 3.0}, "city": {"level": "exact", "left": "FRESNO", "right": "FRESNO", "weight": 2.5}, "zip": {"level": "exact", "left": "93701", "right": "93701", "weight": 2.0}, "facility_type": {"level": "exact", "left": "CHRONIC DIALYSIS CLINIC", "right": "CHRONIC DIALYSIS CLINIC", "weight": 1.5}}, "extra": {}}','[{"source": "cdph", "record_id": "900000", "entity_id": "E9", "name": "DAVITA DIALYSIS UNIT 0", "address": "100 MAIN ST", "city": "FRESNO", "zip": "93701", "facility_type": "CHRONIC DIALYSIS CLINIC", "method": "fuzzy", "match_probability": null}, {"source": "cdph", "record_id": "900004", "entity_id": "E9", "name": "DAVITA DIALYSIS UNIT 4", "address": "100 MAIN ST", "city": "FRESNO", "zip": "93701", "facility_type": "CHRONIC DIALYSIS CLINIC", "method": "fuzzy", "match_probability": null}, {"source": "cdph", "record_id": "900006", "entity_id": "E9", "name": "DAVITA DIALYSIS UNIT 6", "address": "100 MAIN ST", "city": "FRESNO", "zip": "93701", "facility_type": "CHRONIC DIALYSIS CLINIC", "method": "fuzzy", "match_probability": null}, {"source": "hcai", "record_id": "900003", "entity_id": "E9", "name": "DAVITA DIALYSIS UNIT 3", "address": "100 MAIN ST", "city": "FRESNO", "zip": "93701", "facility_type": "CHRONIC DIALYSIS CLINIC", "method": "fuzzy", "match_probability": null}, {"source": "hcai", "record_id": "900005", "entity_id": "E9", "name": "DAVITA DIALYSIS UNIT 5", "address": "100 MAIN ST", "city": "FRESNO", "zip": "93701", "facility_type": "CHRONIC DIALYSIS CLINIC", "method": "fuzzy", "match_probability": null}]','test-build-1','2026-12-07T11:57:30.939817Z','2026-12-07T11:57:30.939817Z',1,0);
INSERT INTO "disputes" VALUES(5,'[["cdph","140000425"],["hcai","106010937"]]','cdph','140000425','hcai','106010937','[{"kind": "identifier_disagrees", "details": {"value": "106010937"}, "scheme": "oshpd_id", "match_probability": 0.05}]',1.1,0.05,'GENERAL ACUTE CARE HOSPITAL','General Acute Care Hospital','{"source": "cdph", "record_id": "140000425", "entity_id": "E5", "name": "ALTA BATES SUMMIT MEDICAL CENTER", "address": "350 HAWTHORNE AVENUE", "city": "OAKLAND", "state": "CA", "zip": "94609", "county": "ALAMEDA", "phone": "(510) 555-0100", "facility_type": "GENERAL ACUTE CARE HOSPITAL", "latitude": 37.8, "longitude": -122.2, "other_names": "", "identifiers": {"oshpd_id": "106010937"}, "match_probability": null, "method": "fuzzy"}','{"source": "hcai", "record_id": "106010937", "entity_id": "E6", "name": "SUMMIT <b>CAMPUS</b> & CLINIC", "address": "3100 Summit St", "city": "Oakland", "state": "CA", "zip": "94609", "county": "ALAMEDA", "phone": "(510) 555-0100", "facility_type": "General Acute Care Hospital", "latitude": 37.8, "longitude": -122.2, "other_names": "", "identifiers": {"oshpd_id": "106010937"}, "match_probability": null, "method": "fuzzy"}','{"link": {"link_id": 4, "status": "below_threshold", "method": "identifier", "match_probability": 0.05, "match_weight": -9.0, "entity_id": null}, "fields": {"name": {"level": "fuzzy", "left": "ALTA BATES SUMMIT MEDICAL CENTER", "right": "SUMMIT <b>CAMPUS</b> & CLINIC", "weight": -1.85}, "address": {"level": "fuzzy", "left": "350 HAWTHORNE AVENUE", "right": "3100 Summit St", "weight": -1.85}, "city": {"level": "exact", "left": "OAKLAND", "right": "Oakland", "weight": 2.5}, "zip": {"level": "exact", "left": "94609", "right": "94609", "weight": 2.0}, "facility_type": {"level": "exact", "left": "GENERAL ACUTE CARE HOSPITAL", "right": "General Acute Care Hospital", "weight": 1.5}}, "extra": {}}','[]','test-build-1','2026-12-07T11:57:30.939817Z','2026-12-07T11:57:30.939817Z',1,0);
CREATE TABLE events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('decision', 'undo')),
    pair_key TEXT NOT NULL,
    source_l TEXT NOT NULL,
    record_id_l TEXT NOT NULL,
    source_r TEXT NOT NULL,
    record_id_r TEXT NOT NULL,
    dispute_id INTEGER REFERENCES disputes(dispute_id),
    reviewer_id INTEGER REFERENCES reviewers(reviewer_id),
    username TEXT NOT NULL,
    department TEXT NOT NULL,
    created_at TEXT NOT NULL,
    verdict TEXT CHECK (verdict IN ('same', 'different', 'unsure')),
    comment TEXT NOT NULL DEFAULT '',
    undoes INTEGER UNIQUE REFERENCES events(event_id),
    CHECK ((kind = 'decision' AND verdict IS NOT NULL AND undoes IS NULL)
        OR (kind = 'undo' AND verdict IS NULL AND undoes IS NOT NULL))
);
INSERT INTO "events" VALUES(1,'decision','[["hcai","106014050"],["hcai","106014051"]]','hcai','106014050','hcai','106014051',3,2,'root','cdph','2026-12-07T11:57:31.846862Z','same','same site',NULL);
INSERT INTO "events" VALUES(2,'decision','[["cdph","140000425"],["hcai","106010937"]]','cdph','140000425','hcai','106010937',5,2,'root','cdph','2026-12-07T11:57:31.854113Z','different','two units',NULL);
INSERT INTO "events" VALUES(3,'decision','[["cdph","140000425"],["hcai","106010937"]]','cdph','140000425','hcai','106010937',5,2,'root','cdph','2026-12-07T11:57:31.865939Z','same','changed my mind',NULL);
INSERT INTO "events" VALUES(4,'undo','[["cdph","140000425"],["hcai","106010937"]]','cdph','140000425','hcai','106010937',5,2,'root','cdph','2026-12-07T11:57:31.873933Z',NULL,'back to different',3);
INSERT INTO "events" VALUES(5,'decision','[["cdph","900002"],["hcai","900001"]]','cdph','900002','hcai','900001',4,2,'root','cdph','2026-12-07T11:57:31.889904Z','unsure','',NULL);
CREATE TABLE login_attempts (
    attempt_id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    ip TEXT NOT NULL,
    at REAL NOT NULL,
    success INTEGER NOT NULL
);
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO "meta" VALUES('schema_version','2');
CREATE TABLE reviewers (
    reviewer_id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    department TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('reviewer', 'admin')),
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    disabled_at TEXT
);
INSERT INTO "reviewers" VALUES(1,'alice','cdph','reviewer','scrypt:32768:8:1$XqzLzoXNIhyRQqGZ$8451133786ebb31473ac3fcb5ad62adfa2f773205ed9c70cec292a06a6eff7e36012dec6a8e9d6120c66fb4c4680fe99b7b22caa7374126b1bb261b607455530','2026-12-07T11:57:31.408878Z',NULL);
INSERT INTO "reviewers" VALUES(2,'root','cdph','admin','scrypt:32768:8:1$LQWhgZdfhID3gre2$35b7fb8bc433d1608322526fc0b16989b5644f4c2369bd3ceb5a3473600b6993791fccad13554b7e3c09e5103392b33df90bda0fbff23d66c5cf5ccc8fb4df57','2026-12-07T11:57:31.832105Z',NULL);
CREATE TABLE sessions (
    session_id INTEGER PRIMARY KEY,
    session_hash TEXT NOT NULL UNIQUE,
    reviewer_id INTEGER NOT NULL REFERENCES reviewers(reviewer_id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE tokens (
    token_id INTEGER PRIMARY KEY,
    reviewer_id INTEGER NOT NULL REFERENCES reviewers(reviewer_id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX disputes_source_l ON disputes(source_l);
CREATE INDEX disputes_source_r ON disputes(source_r);
CREATE INDEX events_pair ON events(pair_key);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the review audit log is append-only: events cannot be updated');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the review audit log is append-only: events cannot be deleted');
END;
CREATE TRIGGER events_undo_target BEFORE INSERT ON events
WHEN NEW.kind = 'undo'
BEGIN
    SELECT RAISE(ABORT, 'an undo must name a decision of the same pair')
    WHERE NOT EXISTS (
        SELECT 1 FROM events d
        WHERE d.event_id = NEW.undoes AND d.kind = 'decision' AND d.pair_key = NEW.pair_key
    );
END;
CREATE INDEX login_attempts_key ON login_attempts(username, ip, at);
CREATE INDEX login_attempts_ip ON login_attempts(ip, at);
CREATE INDEX sessions_reviewer ON sessions(reviewer_id);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('events',5);
COMMIT;
