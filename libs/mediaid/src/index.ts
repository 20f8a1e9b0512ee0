export {
  MEDIA_ID_PREFIX,
  MediaId,
  createMediaIdFactory,
  isValidMediaId,
  mediaIdTimestamp,
  newMediaId,
  parseMediaId,
} from './mediaid';
