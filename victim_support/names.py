"""Japanese names with readings for the synthetic registry, weighted like a rural Ibaraki town.

Surnames lean on names common in 県北・県央 (鈴木, 佐藤 first; 海老沢, 綿引, 照沼, 小松崎 are
characteristically Ibaraki). Given names follow the birth era, because a registry where a
90-year-old is called 陽翔 would not exercise anything real.

``RARE_SURNAMES`` are registered forms that CP932 cannot hold: a character outside JIS X 0208
(𠮷 U+20BB7, 𡈽 U+2123D, 𣘺 U+2363A) or a kanji followed by an ideographic variation selector
(Adobe-Japan1 / Moji_Joho IVS, U+E0100–U+E01EF), as in MJ 文字 registrations. They exercise
the ``name_fallback`` and lossy-CP932 paths.
"""

from __future__ import annotations


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((kanji, kana) for kanji, kana in (item.split(":") for item in text.split()))


#: (kanji, katakana), most frequent first; the generator weights them by rank (Zipf-like).
SURNAMES = _pairs(
    """
    鈴木:スズキ 佐藤:サトウ 小林:コバヤシ 渡辺:ワタナベ 高橋:タカハシ 根本:ネモト 石川:イシカワ
    木村:キムラ 加藤:カトウ 斉藤:サイトウ 中村:ナカムラ 山崎:ヤマザキ 吉田:ヨシダ 伊藤:イトウ
    海老沢:エビサワ 小松崎:コマツザキ 飯島:イイジマ 会沢:アイザワ 綿引:ワタヒキ 照沼:テルヌマ
    菊池:キクチ 大森:オオモリ 野口:ノグチ 長谷川:ハセガワ 山口:ヤマグチ 清水:シミズ 田中:タナカ
    坂本:サカモト 藤田:フジタ 小川:オガワ 石井:イシイ 大塚:オオツカ 岡田:オカダ 金子:カネコ
    中島:ナカジマ 山本:ヤマモト 小野:オノ 荒井:アライ 大内:オオウチ 寺門:テラカド 軍司:グンジ
    大和田:オオワダ 柴田:シバタ 益子:マシコ 永井:ナガイ 小沼:コヌマ 川崎:カワサキ 田山:タヤマ
    菅谷:スガヤ 檜山:ヒヤマ 黒沢:クロサワ 宮本:ミヤモト 村田:ムラタ 関:セキ 久保田:クボタ
    桜井:サクライ 平野:ヒラノ 岡部:オカベ 青木:アオキ 松本:マツモト 井上:イノウエ 林:ハヤシ
    森:モリ 池田:イケダ 橋本:ハシモト 阿部:アベ 石田:イシダ 前田:マエダ 藤井:フジイ 小山:コヤマ
    岩瀬:イワセ 郡司:グンジ 武藤:ムトウ 塙:ハナワ 飛田:トビタ 滑川:ナメカワ 生田目:ナマタメ
    """
)

#: Registered forms outside CP932, with the reading and the intended plain form.
RARE_SURNAMES = (
    ("\U00020bb7田", "ヨシダ"),  # 𠮷田: つちよし
    ("\U0002123d屋", "ツチヤ"),  # 𡈽屋
    ("髙\U0002363a", "タカハシ"),  # 髙𣘺: 髙 is in CP932 (IBM extension), 𣘺 is not
    ("葛\U000e0100西", "カサイ"),  # 葛 with IVS (MJ registration)
    ("辻\U000e0100", "ツジ"),  # 一点しんにょう
    ("渡邉\U000e0102", "ワタナベ"),  # one of 邉's many registered variants
)

#: Given names by birth era: before 1955, 1955–1984, 1985 on.
GIVEN_NAMES = {
    "1": (
        _pairs(
            "清:キヨシ 茂:シゲル 勇:イサム 博:ヒロシ 実:ミノル 進:ススム 正:タダシ 武:タケシ 明:アキラ "
            "勝:マサル 修:オサム 昭:アキラ 和夫:カズオ 正雄:マサオ 幸雄:ユキオ 一郎:イチロウ 三郎:サブロウ "
            "久雄:ヒサオ 秀夫:ヒデオ 義男:ヨシオ"
        ),
        _pairs(
            "誠:マコト 浩:ヒロシ 隆:タカシ 健一:ケンイチ 哲也:テツヤ 学:マナブ 剛:ツヨシ 秀樹:ヒデキ "
            "直樹:ナオキ 和也:カズヤ 浩二:コウジ 大輔:ダイスケ 達也:タツヤ 聡:サトシ 英樹:ヒデキ "
            "康弘:ヤスヒロ 伸一:シンイチ 雅之:マサユキ"
        ),
        _pairs(
            "翔太:ショウタ 拓海:タクミ 大翔:ヒロト 蓮:レン 悠真:ユウマ 颯太:ソウタ 陽翔:ハルト 湊:ミナト "
            "翔:ショウ 健太:ケンタ 大樹:ダイキ 拓也:タクヤ 蒼:アオイ 樹:イツキ 悠斗:ユウト 陸:リク 海斗:カイト"
        ),
    ),
    "2": (
        _pairs(
            "和子:カズコ 幸子:サチコ 節子:セツコ 洋子:ヨウコ 弘子:ヒロコ 京子:キョウコ 美智子:ミチコ "
            "久子:ヒサコ 信子:ノブコ 文子:フミコ キミ:キミ ハル:ハル 静子:シズコ 悦子:エツコ 照子:テルコ "
            "トシ子:トシコ"
        ),
        _pairs(
            "恵美:エミ 由美子:ユミコ 裕子:ユウコ 真由美:マユミ 久美子:クミコ 明美:アケミ 直美:ナオミ "
            "智子:トモコ 美穂:ミホ 陽子:ヨウコ 香織:カオリ 恵子:ケイコ 典子:ノリコ 純子:ジュンコ 綾子:アヤコ"
        ),
        _pairs(
            "陽菜:ヒナ 結衣:ユイ 葵:アオイ 美咲:ミサキ さくら:サクラ 凛:リン 結菜:ユイナ 愛:アイ 彩花:アヤカ "
            "七海:ナナミ 芽依:メイ 紬:ツムギ 杏:アン 莉子:リコ 優奈:ユウナ 花:ハナ"
        ),
    ),
}


def era(birth_year: int) -> int:
    """Index into a ``GIVEN_NAMES`` tuple for a birth year."""
    if birth_year < 1955:
        return 0
    if birth_year < 1985:
        return 1
    return 2
