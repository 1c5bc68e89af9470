// The viewer: one picture large, the keyboard (or a swipe, or the buttons) moving through the job
// in grid order: ←/→ along a row, ↑/↓ between rows, Home/End, Esc back to the grid; 1 toggles
// fit/1:1; s, x, u star, reject, clear; c chooses it for compare. Every view has its own URL.
//
// It draws from one view document per item (index, state, image, caption, rating, moves, links):
// served by `comfyq serve`, from the JSON API (GET /api/jobs/NAME/items/INDEX), the same one
// scripts use; in a report written by `comfyq report`, from the page itself, read only.
(function () {
  'use strict';
  var root = document.querySelector('.viewer');
  if (!root) return;
  var served = !!root.dataset.api;
  var report = served ? null : JSON.parse(document.getElementById('comfyq-views').textContent);
  var views = {};        // index → a promise of its view document (served)
  var shown = null;      // the view document on screen
  var wanted = null;     // the index asked for last: an answer for another one is dropped
  var ready = Promise.resolve();  // the moves so far: a key pressed meanwhile moves from where they end

  function view(index) {
    if (!served) {
      var found = report.items[String(index)];
      return found ? Promise.resolve(found) : Promise.reject(new Error('item ' + index + ' is not on this page'));
    }
    if (!views[index]) {
      views[index] = fetch(root.dataset.api + index, {headers: {Accept: 'application/json'}, cache: 'no-store'}).then(function (response) {
        if (!response.ok) return response.text().then(function (text) { throw new Error(text || response.statusText); });
        return response.json();
      });
      views[index].catch(function () { delete views[index]; });
    }
    return views[index];
  }

  // An item's address: its URL when served; in a report its anchor, on another page of the
  // report for an item that is not on this one.
  function address(index) {
    if (served) return root.dataset.base + index;
    var page = Math.floor(index / report.pageSize) + 1;
    return (page === report.page ? '' : (page === 1 ? 'index.html' : 'index-' + page + '.html')) + '#view-' + index;
  }

  function go(index, how) {
    if (index === null || index === undefined) return Promise.resolve();
    if (!served && Math.floor(index / report.pageSize) + 1 !== report.page) { location.assign(address(index)); return Promise.resolve(); }
    wanted = index;
    if (how === 'push') history.pushState({index: index}, '', address(index));
    else if (how === 'replace') history.replaceState({index: index}, '', address(index));
    return view(index).then(function (v) { if (wanted === index) render(v); }, failed);
  }

  // Moves one way from the item on screen once the moves before have ended.
  function step(way) {
    ready = ready.then(function () { return shown ? go(shown.moves[way], 'push') : undefined; });
  }
  function jump(index, how) {
    ready = ready.then(function () { return go(index, how); });
  }

  function close() {
    if (served) { location.assign(root.dataset.grid); return; }
    wanted = null;
    shown = null;
    root.hidden = true;
    history.pushState(null, '', location.pathname + location.search);
  }

  function failed(error) {
    var line = root.querySelector('.viewer-error');
    line.textContent = 'cannot show this item: ' + error.message;
    line.hidden = false;
  }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    for (var key in attributes) node.setAttribute(key, attributes[key]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function link(text, index, className, key) {
    var a = element('a', {href: address(index), class: className}, text);
    if (key) a.append(' ', element('kbd', {}, key));
    a.addEventListener('click', function (event) { event.preventDefault(); jump(index, 'push'); });
    return a;
  }

  function render(v) {
    shown = v;
    root.hidden = false;
    root.dataset.item = String(v.index);
    root.querySelector('.viewer-error').hidden = true;
    document.title = v.job + '/' + v.index + ' · comfyq';
    var nav = root.querySelector('nav');
    nav.textContent = '';
    if (v.moves.left !== null) nav.append(link('← previous', v.moves.left, 'prev'));
    var back = element('a', {href: v.links.grid, class: 'back'}, 'grid');
    back.append(' ', element('kbd', {}, 'Esc'));
    if (!served) back.addEventListener('click', function (event) { event.preventDefault(); close(); });
    nav.append(back);
    if (v.moves.right !== null) nav.append(link('next →', v.moves.right, 'next'));
    if (served && v.state === 'done') {
      [['starred', '★ star', 's'], ['rejected', '✕ reject', 'x'], ['none', 'clear', 'u']].forEach(function (choice) {
        var button = element('button', {type: 'button', class: 'rate', 'data-rating': choice[0], 'data-key': choice[2]}, choice[1]);
        button.append(' ', element('kbd', {}, choice[2]));
        button.addEventListener('click', function () { ready = ready.then(function () { return rate(choice[0]); }); });
        nav.append(button);
      });
    }
    if (served) {
      var toggle = element('a', {href: '#', class: 'compare-toggle'}, 'compare ');
      toggle.append(element('kbd', {}, 'c'));
      toggle.addEventListener('click', function (event) { event.preventDefault(); toggleCompare(); });
      nav.append(toggle, element('a', {href: '#', class: 'compare-open'}));
    }
    nav.append(element('a', {href: v.links.details, class: 'details'}, 'details'));
    if (!served) nav.lastChild.addEventListener('click', function () { root.hidden = true; });

    var stage = root.querySelector('.stage');
    stage.textContent = '';
    if (v.image) {
      var img = element('img', {class: 'view', src: v.image, alt: v.job + '/' + v.index});
      var fit = function () {
        img.classList.toggle('pixelated', img.naturalWidth < stage.clientWidth && img.naturalHeight < stage.clientHeight);
      };
      img.addEventListener('load', fit);
      stage.append(img);
    } else {
      stage.append(element('p', {class: v.state === 'failed' ? 'failed' : 'muted'}, v.state + (v.error ? ': ' + v.error : '')));
    }
    var caption = root.querySelector('figcaption');
    caption.textContent = v.job + '/' + v.index;
    v.caption.forEach(function (pair) { caption.append(' · ' + pair[0] + ' = ' + pair[1]); });
    if (v.rating) {
      caption.append(' · ');
      caption.append(element('span', {class: 'rating-now ' + v.rating}, (v.rating === 'starred' ? '★ ' : '✕ ') + v.rating));
    }
    if (served) showCompare();
    // The neighbours, ready before they are asked for.
    v.preload.forEach(function (url) { new Image().src = url; });
    if (served) ['left', 'right', 'up', 'down'].forEach(function (way) { if (v.moves[way] !== null) view(v.moves[way]).catch(function () {}); });
  }

  function rate(rating) {
    if (!served || !shown || shown.state !== 'done') return Promise.resolve();
    var index = shown.index;
    if (shown.rating === rating) rating = 'none';
    return fetch(shown.rate, {
      method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json'}, body: 'rating=' + rating
    }).then(function (response) {
      if (!response.ok) return response.text().then(function (text) { throw new Error(text || response.statusText); });
      delete views[index];
      return view(index);
    }).then(function (v) { if (wanted === index) render(v); }, failed);
  }

  // Compare: the chosen items of this job, kept in the browser (two to four).
  function compareKey() { return 'comfyq-compare:' + root.dataset.grid; }
  function chosen() {
    try { return JSON.parse(localStorage.getItem(compareKey()) || '[]'); } catch (error) { return []; }
  }
  function showCompare() {
    var list = chosen(), open = root.querySelector('.compare-open');
    open.textContent = list.length > 1 ? 'open compare (' + list.length + ')' : (list.length ? '1 chosen' : '');
    open.href = list.length > 1 ? root.dataset.grid + '/compare?items=' + list.join(',') : '#';
    root.querySelector('.compare-toggle').firstChild.textContent = list.indexOf(String(shown.index)) >= 0 ? 'uncompare ' : 'compare ';
  }
  function toggleCompare() {
    if (!shown) return;
    var list = chosen(), item = String(shown.index), at = list.indexOf(item);
    if (at >= 0) list.splice(at, 1); else { list.push(item); if (list.length > 4) list.shift(); }
    localStorage.setItem(compareKey(), JSON.stringify(list));
    showCompare();
  }

  document.addEventListener('keydown', function (event) {
    if (root.hidden || event.altKey || event.ctrlKey || event.metaKey) return;
    var ways = {ArrowLeft: 'left', ArrowRight: 'right', ArrowUp: 'up', ArrowDown: 'down', Home: 'first', End: 'last'};
    if (ways[event.key]) { event.preventDefault(); step(ways[event.key]); return; }
    if (event.key === 'Escape') { close(); return; }
    if (event.key === '1') { root.querySelector('.stage').classList.toggle('actual'); return; }
    var rating = {s: 'starred', x: 'rejected', u: 'none'}[event.key];
    // On the item the moves so far end on, not the one on screen while they run.
    if (rating) ready = ready.then(function () { return rate(rating); });
    else if (event.key === 'c' && served) ready = ready.then(toggleCompare);
  });
  var startX = null;
  root.addEventListener('touchstart', function (event) { startX = event.touches[0].clientX; }, {passive: true});
  root.addEventListener('touchend', function (event) {
    if (startX === null || !shown) return;
    var dx = event.changedTouches[0].clientX - startX;
    startX = null;
    if (Math.abs(dx) > 50) step(dx < 0 ? 'right' : 'left');
  });

  if (served) {
    window.addEventListener('popstate', function (event) {
      var index = event.state && event.state.index;
      jump(typeof index === 'number' ? index : Number(root.dataset.item), null);
    });
    jump(Number(root.dataset.item), 'replace');
  } else {
    // A report: a picture in the grid opens the viewer; #view-N is its address.
    document.addEventListener('click', function (event) {
      var cell = event.target.closest && event.target.closest('table.grid a[data-item]');
      if (!cell || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      jump(Number(cell.dataset.item), 'push');
    });
    var fromHash = function () {
      var match = /^#view-(\d+)$/.exec(location.hash);
      if (match) jump(Number(match[1]), null); else if (!root.hidden) { root.hidden = true; shown = null; }
    };
    window.addEventListener('popstate', fromHash);
    window.addEventListener('hashchange', fromHash);
    fromHash();
  }
})();
