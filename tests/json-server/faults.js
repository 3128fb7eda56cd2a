// A json-server middleware that lets a test feed the REST connector bad
// answers. It reads the JSON file named by MNO_FAULT_FILE on every request:
//   {"status": 500}                        every request answers 500
//   {"status": 429, "retry_after": 2}      every request answers 429 with Retry-After
//   {"garbage": true}                      every request answers 200 with text that is not JSON
//   {"reject": {"field": "number", "equals": "BAD-1"}}
//                                          a write whose body has that value answers 422
//   {"max_page_size": 1}                   a listing answers at most that many records a page
//                                          (as APIs that cap the size asked for)
//   {"empty_list": true}                   a listing answers [] (a glitch)
//   {"strip_id": true}                     a listing answers its records without their id
//   {"empty_page_once": 2}                 the first listing page from offset _start >= 2 answers []
//                                          (once for each content of the fault file: a glitch)
//   {"lose_create_once": true}             the first create (POST) makes the record, then closes the
//                                          connection without answering (once for each content of the
//                                          fault file: an answer lost)
//   {"idempotency": true}                  a create repeating an Idempotency-Key answers the record
//                                          made the first time, as APIs that take the header do
// No file, or an empty object: the API answers as usual. With MNO_REQUIRED_AUTH
// set, a request without that Authorization header answers 401.
const fs = require('fs');
const jsonServer = require('json-server');

const [parseJson] = jsonServer.bodyParser;

// The fault file's text whose one-time glitch was already served.
let spentOnce = null;
// The fault file's text whose create answer was already lost.
let spentLoss = null;
// Idempotency-Key → the record the create made.
const madeByKey = new Map();

module.exports = (req, res, next) => {
  const required = process.env.MNO_REQUIRED_AUTH;
  if (required && req.headers.authorization !== required) {
    return res.status(401).json({ error: 'missing or wrong Authorization header' });
  }
  let fault = {};
  let faultText = '';
  try {
    faultText = fs.readFileSync(process.env.MNO_FAULT_FILE, 'utf8');
    fault = JSON.parse(faultText);
  } catch (e) {
    fault = {};
  }
  if (fault.status === 429) {
    res.set('Retry-After', String(fault.retry_after || 1));
    return res.status(429).json({ error: 'slow down' });
  }
  if (fault.status) {
    return res.status(fault.status).json({ error: 'the server failed' });
  }
  if (fault.garbage) {
    return res.status(200).type('text/html').send('<html><body>maintenance</body></html>');
  }
  const listing = req.method === 'GET' && /^\/[^/]+\/?$/.test(req.path);
  if (listing && fault.empty_list) {
    return res.status(200).json([]);
  }
  if (listing && fault.empty_page_once !== undefined && spentOnce !== faultText
      && Number(req.query._start || 0) >= fault.empty_page_once) {
    spentOnce = faultText;
    return res.status(200).json([]);
  }
  if (listing && fault.max_page_size && req.query._limit) {
    req.query._limit = String(Math.min(Number(req.query._limit), fault.max_page_size));
  }
  if (listing && fault.strip_id) {
    const jsonp = res.jsonp.bind(res);
    res.jsonp = (data) =>
      jsonp(Array.isArray(data) ? data.map(({ id, ...rest }) => rest) : data);
  }
  if (req.method === 'POST' && /^\/[^/]+\/?$/.test(req.path)) {
    const key = fault.idempotency ? req.headers['idempotency-key'] : undefined;
    if (key && madeByKey.has(key)) {
      return res.status(201).json(madeByKey.get(key));
    }
    const lose = fault.lose_create_once && spentLoss !== faultText;
    if (lose) {
      spentLoss = faultText;
    }
    if (key || lose) {
      const jsonp = res.jsonp.bind(res);
      res.jsonp = (data) => {
        if (key) {
          madeByKey.set(key, data);
        }
        return lose ? req.socket.destroy() : jsonp(data);
      };
    }
  }
  if (fault.reject && ['POST', 'PUT', 'PATCH'].includes(req.method)) {
    return parseJson(req, res, () => {
      const body = req.body || {};
      if (body[fault.reject.field] === fault.reject.equals) {
        return res.status(422).json({
          error: `${fault.reject.field} ${fault.reject.equals} is refused by this API`,
        });
      }
      return next();
    });
  }
  return next();
};
