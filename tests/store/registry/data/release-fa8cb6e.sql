-- langdu's registry as the release at commit fa8cb6e left it (SQLite, schema_version 3):
-- five articles (published with an episode, degraded with an upgrade due, with a URL,
-- failed, interrupted mid-reading) and the blob index, made by running that release's
-- app with the fake engines of tests/fakes.py, then sqlite3's iterdump.
BEGIN TRANSACTION;
CREATE TABLE articles (
        id TEXT PRIMARY KEY, title TEXT, url TEXT, voice TEXT NOT NULL, rate TEXT NOT NULL,
        pitch TEXT NOT NULL, sentences TEXT NOT NULL,
        status TEXT NOT NULL, error TEXT, rendering TEXT, degraded TEXT,
        duration_ms INTEGER, bytes INTEGER, work INTEGER,
        upgrade_at INTEGER, upgrade_delay_s REAL,
        published INTEGER NOT NULL DEFAULT 0, category TEXT, feed_at INTEGER,
        published_at INTEGER, episode_rendering TEXT, episode_bytes INTEGER,
        episode_ms INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
INSERT INTO "articles" VALUES('71304d653167923603563905222b518e','一',NULL,'fake-a','+0%','+0Hz','[[0, "一"], [1, "第一篇文章。"], [1, "它有两句话。"]]','ready',NULL,'rfbee0b5b1b36',NULL,1704,10224,NULL,NULL,NULL,1,'news',1796455783056,1796086800000,'rfbee0b5b1b36',15180,1752,1796455783056,1796455783140);
INSERT INTO "articles" VALUES('f724608b1b7221e3f6c0053fd93c908e','二',NULL,'fake-a','+0%','+0Hz','[[0, "二"], [1, "坏的文章。"]]','ready',NULL,'rfbee0b5b1b36-offline-a','offline-a',1080,6480,NULL,1796459383100,3600.0,0,NULL,NULL,NULL,NULL,NULL,NULL,1796455783086,1796455783100);
INSERT INTO "articles" VALUES('2d79522360f804aa9fa9934f8c16441b','三','https://example.com/3','fake-a','+0%','+0Hz','[[0, "三"], [1, "第三篇，朗读者是另一个声音。"]]','ready',NULL,'rfbee0b5b1b36',NULL,1440,8640,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,NULL,NULL,1796455783115,1796455783139);
INSERT INTO "articles" VALUES('52a4badba020452646f35974855f383a','四',NULL,'fake-a','+0%','+0Hz','[[0, "四"], [1, "全坏的文章。"]]','failed','offline refused ''全坏的文章。''',NULL,NULL,NULL,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,NULL,NULL,1796455783162,1796455783170);
INSERT INTO "articles" VALUES('bd35372ec2bc4d97342c74c0d7290c8a','五',NULL,'fake-a','+0%','+0Hz','[[0, "五"], [1, "慢的文章。"]]','synthesizing',NULL,NULL,NULL,NULL,NULL,0,NULL,NULL,0,NULL,NULL,NULL,NULL,NULL,NULL,1796455783189,1796455783191);
CREATE TABLE blobs (
        key TEXT PRIMARY KEY, size INTEGER NOT NULL, grp TEXT NOT NULL,
        evictable INTEGER NOT NULL, used_at INTEGER NOT NULL, sha256 TEXT);
INSERT INTO "blobs" VALUES('parts/fd/fd2494a3c38815845c1132d2af0e7ba34ea12e79.part',608,'parts/fd/fd2494a3c38815845c1132d2af0e7ba34ea12e79.part',1,1796455783066,'78d6685d0c1ebff3516b1724349cc6cb698d6209f9408486da6d1aa97589dbab');
INSERT INTO "blobs" VALUES('parts/e7/e7553fdc0e1afa5dc31f38fd3455d3f76814666d.part',1829,'parts/e7/e7553fdc0e1afa5dc31f38fd3455d3f76814666d.part',1,1796455783067,'76383fdc1716bde06eb102b68d0da612fca259df64f2636e853828fea334e1df');
INSERT INTO "blobs" VALUES('parts/e3/e396af4baf198da154df0e5cbd95f2f0fa045185.part',1829,'parts/e3/e396af4baf198da154df0e5cbd95f2f0fa045185.part',1,1796455783067,'10a7ccfd87bd950ebffddb78a1ca663fa48dc5e74e5cd64ef102b6162f40f0a1');
INSERT INTO "blobs" VALUES('renders/71304d653167923603563905222b518e/rfbee0b5b1b36.json',1124,'renders/71304d653167923603563905222b518e/rfbee0b5b1b36',1,1796455783068,'25ba8942fd9ad20a399fdf197591f3fe5c4788c7d48d59c2ddb4fece1758ef9a');
INSERT INTO "blobs" VALUES('renders/71304d653167923603563905222b518e/rfbee0b5b1b36.mp3',10224,'renders/71304d653167923603563905222b518e/rfbee0b5b1b36',1,1796455783069,'fa22bb48c5a1b9969a07cbdfa286b9ba659e2a25a6bac515b8a0baa3fc212683');
INSERT INTO "blobs" VALUES('parts/e3/e3d230c1dc3e59509bc1c845d00941e7568eade9.part',608,'parts/e3/e3d230c1dc3e59509bc1c845d00941e7568eade9.part',1,1796455783094,'20ab65e0ff2b6ea9f0cadb5fe0242a92f5bd79e3d0df67e190e4f224ce198097');
INSERT INTO "blobs" VALUES('parts/34/34f1368a65c9b2be0a274e0e5d6515c754298bdf.part',680,'parts/34/34f1368a65c9b2be0a274e0e5d6515c754298bdf.part',1,1796455783098,'c51f7c7f703c546f6d91e619d4c6ba7389057df331f7cc560a5b0b141f5ec9f2');
INSERT INTO "blobs" VALUES('parts/24/24dfc1602b00b20cc5d17f8eba43cef375080c89.part',1593,'parts/24/24dfc1602b00b20cc5d17f8eba43cef375080c89.part',1,1796455783099,'5adc722c962cb892309b05cc4e1178f8c1c3416796c027851eb485a4d63ef285');
INSERT INTO "blobs" VALUES('renders/f724608b1b7221e3f6c0053fd93c908e/rfbee0b5b1b36-offline-a.json',600,'renders/f724608b1b7221e3f6c0053fd93c908e/rfbee0b5b1b36-offline-a',1,1796455783100,'be0a82f18212ff13090970218d93cd5ede74e5a53cb983cb57dfcd55bda2d867');
INSERT INTO "blobs" VALUES('renders/f724608b1b7221e3f6c0053fd93c908e/rfbee0b5b1b36-offline-a.mp3',6480,'renders/f724608b1b7221e3f6c0053fd93c908e/rfbee0b5b1b36-offline-a',1,1796455783100,'bd84800bbb7cfb040e8d86367dd1f80fb1d3a4089ecfeaa5498441664f642f53');
INSERT INTO "blobs" VALUES('parts/13/1342aa17560eebc3dc530402d031ba0719bfd961.part',608,'parts/13/1342aa17560eebc3dc530402d031ba0719bfd961.part',1,1796455783121,'9841daac6d56b41d256dc2c3c4262115118145204452a1a0b25839340f2b79c7');
INSERT INTO "blobs" VALUES('parts/4b/4b5c64e7b67653e98582e8f4a8c2925dd053ee36.part',3974,'parts/4b/4b5c64e7b67653e98582e8f4a8c2925dd053ee36.part',1,1796455783130,'2a83eb5a06bc831ba1541ed1ecc99fab61749b14a22d2de0c9ff18ffaa1ff173');
INSERT INTO "blobs" VALUES('renders/2d79522360f804aa9fa9934f8c16441b/rfbee0b5b1b36.json',1167,'renders/2d79522360f804aa9fa9934f8c16441b/rfbee0b5b1b36',1,1796455783136,'5fedcfb7b07ef9c27fdd769bf9b6d2a1c66d6fe1774faab0731e71f02d25e8bc');
INSERT INTO "blobs" VALUES('renders/2d79522360f804aa9fa9934f8c16441b/rfbee0b5b1b36.mp3',8640,'renders/2d79522360f804aa9fa9934f8c16441b/rfbee0b5b1b36',1,1796455783138,'843718d2358b403e12b232bdd90359f73aac78187f5e8bc1a3f7af81efbdf5d7');
INSERT INTO "blobs" VALUES('episodes/71304d653167923603563905222b518e/rfbee0b5b1b36.mp3',15180,'episodes/71304d653167923603563905222b518e/rfbee0b5b1b36',0,1796455783139,'47e5c0963202f8f38b5aad046b840b28dc7ebc963ee18d2274cd275612c8efb6');
INSERT INTO "blobs" VALUES('parts/0c/0c020241ff90dd5c2ada960bd898138ea1637363.part',608,'parts/0c/0c020241ff90dd5c2ada960bd898138ea1637363.part',1,1796455783167,'f5ee0520ed74c8ed7122beaa713835504901910a0a98aa0985ebd1cd7511b134');
INSERT INTO "blobs" VALUES('parts/8f/8f6cecfef105866bc8dacde57cc11fc71fbec205.part',680,'parts/8f/8f6cecfef105866bc8dacde57cc11fc71fbec205.part',1,1796455783170,'9ac4c1701faf371fc62a3da4cc434b31cba91cb93744aafdac4dc4acd998595c');
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO "schema_version" VALUES(3);
CREATE INDEX articles_work ON articles(work) WHERE work IS NOT NULL;
CREATE INDEX articles_upgrade ON articles(upgrade_at) WHERE upgrade_at IS NOT NULL;
CREATE INDEX articles_feed ON articles(published, category);
CREATE INDEX blobs_lru ON blobs(evictable, used_at);
COMMIT;
