"""Victim-support exports: lawful, minimal, encrypted resident lists for sheltering municipalities.

After a large disaster, residents of town X shelter in neighbouring city Y. This package
builds the list Y may lawfully receive (災害対策基本法90条の4①三, 49条の11③, 個人情報保護法
69条②三) from X's newest replica snapshot, drops what no basis allows (個人番号, 住民票コード,
本籍, insurance and pension data; rows under 支援措置 or 抑止), pseudonymises ids per partner,
encrypts to Y's age recipient, signs with X's Ed25519 key and records every step in a
hash-chained audit log.
"""
